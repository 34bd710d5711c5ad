"""The MySQL-family tier on its own sandbox network (inventory/mariadb.yml): a MariaDB primary and two replicas
that hold its data and replicate by GTID."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from fabstack import commands
from fabstack.verify import verify
from tests.conftest import REPO
from tests.integration.conftest import in_host

ENV = "mariadb"


@pytest.fixture(scope="module")
def tier(podman_root: None) -> Iterator[list]:
    """The tier's hosts, up and deployed (removed at the end unless FABSTACK_KEEP_SANDBOX is set)."""
    commands.sandbox_up(REPO, ENV)
    try:
        reports = commands.deploy(REPO, ENV)
        assert not [r.host for r in reports if r.failed], [(r.host, r.error) for r in reports if r.failed]
        yield reports
    finally:
        if not os.environ.get("FABSTACK_KEEP_SANDBOX"):
            commands.sandbox_down(REPO, ENV)


def sql(host: str, statement: str) -> str:
    """One statement as root on a tier host (through podman, not fabstack's SSH path)."""
    out = in_host(host, f"mariadb --batch -N -e \"{statement}\"")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_second_deploy_changes_nothing_and_verify_passes(tier: list) -> None:
    again = commands.deploy(REPO, ENV)
    assert {r.host: r.count("changed") for r in again} == {r.host: 0 for r in again}
    assert verify(REPO, ENV) == 0


def test_a_replica_added_to_a_primary_holding_data_has_the_same_data(tier: list) -> None:
    sql("mdb1", "use app; drop table if exists checked; create table checked (id int primary key, body varchar(64)); "
                "insert into checked select seq, md5(seq) from seq_1_to_5000")
    # mdb3 as a new, empty host: its data removed and MariaDB's initial database made again; the next deploy
    # must seed it from the primary, which now holds data no binary log position alone would give it
    in_host("mdb3", "systemctl stop mariadb && rm -rf /var/lib/mysql && mkdir /var/lib/mysql && "
                    "chown mysql:mysql /var/lib/mysql && mariadb-install-db --user=mysql >/dev/null && "
                    "systemctl start mariadb")
    assert sql("mdb3", "select count(*) from information_schema.schemata where schema_name = 'app'") == "0"
    reports = commands.deploy(REPO, ENV, limit="mdb3")
    assert not [r.host for r in reports if r.failed], [(r.host, r.error) for r in reports if r.failed]
    sql("mdb1", "insert into app.checked values (5001, 'after the seed')")  # and it replicates from there on
    for _ in range(30):
        if sql("mdb3", "select count(*) from app.checked") == "5001":
            break
        time.sleep(1)
    assert sql("mdb3", "select count(*) from app.checked") == "5001"
    check = in_host("mdb1", "pt-table-checksum --replicate=percona.checksums --databases=app "
                            "--recursion-method=processlist --no-check-binlog-format "
                            "F=/etc/mysql/fabstack-checksum.cnf,h=10.216.0.11 2>&1")
    print(check.stdout)
    assert check.returncode == 0, check.stdout
    rows = [line.split() for line in check.stdout.splitlines() if line.strip().endswith("app.checked")]
    assert rows and rows[0][2] == "0", check.stdout  # ERRORS DIFFS ROWS ...: no difference on any replica
    for replica in ("mdb2", "mdb3"):  # each replica computed its own checksums of every chunk, equal to the primary's
        compared = sql(replica, "select count(*), sum(this_crc <> master_crc or this_cnt <> master_cnt) "
                                "from percona.checksums where db = 'app' and tbl = 'checked'").split()
        assert int(compared[0]) > 0 and compared[1] == "0", (replica, compared)
