"""testinfra checks of the postgresql_replica role."""

from collections.abc import Callable
from typing import Any

import pytest


def test_replica_is_a_streaming_hot_standby(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any],
                                            report: Callable[[str], None]) -> None:
    data = hostvars["postgresql_data"]
    out = host.check_output("runuser -u postgres -- psql -X -At -c 'select pg_is_in_recovery()'")
    if "patroni" in fleet[host.backend.get_hostname()]["roles"]:
        # this role only made the first clone: Patroni's lease decides who follows, and writes the replication
        # settings into its own postgresql.conf
        if out == "f":
            pytest.skip("leads the cluster now (Patroni moved the lease here)")
    else:
        assert host.file(f"{data}/standby.signal").exists
        auto = host.file(f"{data}/postgresql.auto.conf").content_string
        assert f"primary_slot_name = '{host.backend.get_hostname().replace('-', '_')}'" in auto
        assert "password=" not in auto  # the password stays in the 0600 .pgpass
        assert host.file(hostvars["postgresql_pgpass"]).mode == 0o600
    assert out == "t"
    refused = host.run("runuser -u postgres -- psql -X -At -d app -c 'create table nope (i int)'")
    assert refused.rc != 0 and "read-only" in refused.stderr
    receiver, lag = host.check_output(
        "runuser -u postgres -- psql -X -At -F ' ' -c \"select coalesce((select status from pg_stat_wal_receiver), "
        "'none'), coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)\"").split()
    report(f"hot standby, WAL receiver {receiver}, {lag} bytes received but not yet replayed")
