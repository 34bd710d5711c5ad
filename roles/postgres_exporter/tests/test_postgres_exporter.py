"""testinfra checks of the postgres_exporter role: PostgreSQL answers it, a primary lists each replica streaming
through its slot with its lag, and a replica says it streams."""

import re
from typing import Any


def metrics(host: Any, hostvars: dict[str, Any]) -> str:
    """The exporter's page, as the monitoring host reads it."""
    return host.check_output(f"curl -sf http://{hostvars['ansible_host']}:{hostvars['postgres_exporter_port']}/metrics")


def value(page: str, name: str, **labels: str) -> float | None:
    """The value of one sample (the first whose labels include ``labels``), or None."""
    for line in page.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            return float(match.group(2))
    return None


def test_postgresql_answers_with_its_connection_limit(host: Any, hostvars: dict[str, Any],
                                                       computed: dict[str, Any]) -> None:
    page = metrics(host, hostvars)
    assert value(page, "pg_up") == 1
    assert value(page, "fabstack_pg_connections_max") == computed["postgresql_max_connections"]
    assert 0 < value(page, "fabstack_pg_connections_used") < computed["postgresql_max_connections"]


def test_replication_is_seen_from_both_ends(host: Any, hostvars: dict[str, Any], fleet: dict[str, Any]) -> None:
    page = metrics(host, hostvars)
    me = host.backend.get_hostname()
    if hostvars["postgresql_primary_group"] in hostvars["group_names"]:
        replicas = [name for name, entry in fleet.items()
                    if hostvars["postgresql_replica_group"] in entry["vars"]["group_names"]]
        for replica in replicas:
            slot = fleet[replica]["vars"]["postgresql_slot"]
            assert value(page, "fabstack_pg_slot_active", slot=slot) == 1, (replica, page)
            lag = value(page, "fabstack_pg_replication_lag_bytes", replica=slot)
            assert lag is not None, (replica, page)
            print(f"{replica}: {lag:.0f} bytes behind {me}")
    else:
        assert value(page, "fabstack_pg_replica_streaming") == 1, page
        print(f"{me}: replays {value(page, 'fabstack_pg_replica_lag_seconds')} s behind its primary")


def test_the_exporter_logs_in_without_a_password(host: Any, hostvars: dict[str, Any]) -> None:
    config = host.file("/etc/default/prometheus-postgres-exporter").content_string
    assert "password=" not in config.lower()
    assert f"user={hostvars['postgres_exporter_user']} host=/run/postgresql " in config
