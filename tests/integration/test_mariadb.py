"""The MySQL-family tier on its own sandbox network (inventory/mariadb.yml): a MariaDB primary and two replicas
that hold its data and replicate by GTID; the Laravel shop behind the LB reading from the replicas and writing to
the primary; a replica added to a primary holding data; a point-in-time restore; switchover under a write load
(the shop following it); failover after the primary's container is killed, and the old primary's rejoin."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from fabstack.cli import commands
from fabstack.day2 import backups as backup_ops
from fabstack.day2.verify import verify
from fabstack.engine.errors import FabstackError
from fabstack.stack.hostfiles import BACKUP_SCRIPT
from fabstack.tiers.env import load_env, open_fleet
from fabstack.tiers.mariadb import failover as mf
from tests.conftest import REPO
from tests.integration.chaos import sandbox_tls
from tests.integration.conftest import env_up, in_host
from tests.integration.mariadbchaos import ENV, MariaWriter, Probe, tier_addresses


@pytest.fixture(scope="module")
def tier(podman_root: None) -> Iterator[None]:
    """The env's hosts, up and deployed for this module."""
    yield from env_up(ENV)


def sql(host: str, statement: str) -> str:
    """One statement as root on a tier host (through podman, not fabstack's SSH path)."""
    out = in_host(host, f"mariadb --batch -N -e \"{statement}\"")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def roles() -> tuple[str, list[str]]:
    """The primary and the replicas as the inventory and the recorded topology say."""
    groups = load_env(REPO, ENV).groups()
    return groups["mariadb_primary"][0], groups["mariadb_replica"]


def fleet() -> mf.MariaFleet:
    """The tier's day-2 fleet, quiet."""
    return open_fleet(REPO, ENV, "mariadb", out=print)  # type: ignore[return-value]


def replicating(name: str) -> bool:
    """Whether a host's IO and SQL threads both run."""
    status = in_host(name, "mariadb --batch -e 'SHOW SLAVE STATUS\\G'").stdout
    return "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status


@pytest.fixture
def probe(tier: None) -> Iterator[Probe]:
    """This machine's probe account and table on the tier (dropped at the end from whichever host is primary)."""
    made = Probe(roles()[0]).create()
    try:
        yield made
    finally:
        made.drop(roles()[0])


def test_a_second_deploy_changes_nothing_and_verify_passes(tier: None) -> None:
    again = commands.deploy(REPO, ENV)
    assert {r.host: r.count("changed") for r in again} == {r.host: 0 for r in again}
    assert verify(REPO, ENV) == 0


def shop_route() -> dict:
    """The shop's answer (through the LB, over HTTPS) to which server served its read, its write, and its read
    after that write in one request."""
    project = load_env(REPO, ENV)
    lb = project.hostvars()[project.inventory.select("lb")[0]]["ansible_host"]
    with urllib.request.urlopen(f"https://{lb}/db-route", context=sandbox_tls(), timeout=10) as response:
        return dict(json.load(response))


def test_the_shop_reads_from_the_replicas_and_writes_to_the_primary_through_the_lb(tier: None) -> None:
    primary, replicas = roles()
    seen = [shop_route() for _ in range(10)]
    assert {s["write"]["host"] for s in seen} == {primary} and {s["write"]["read_only"] for s in seen} == {0}
    assert {s["read"]["host"] for s in seen} <= set(replicas) and {s["read"]["read_only"] for s in seen} == {1}
    assert {s["read_after_write"]["host"] for s in seen} == {primary}  # sticky: a request reads its own write


def test_a_replica_added_to_a_primary_holding_data_has_the_same_data(tier: None) -> None:
    primary, replicas = roles()
    added = replicas[-1]
    sql(primary, "use app; drop table if exists checked; create table checked (id int primary key, "
                 "body varchar(64)); insert into checked select seq, md5(seq) from seq_1_to_5000")
    # the replica as a new, empty host: its data removed and MariaDB's initial database made again; the next
    # deploy must seed it from the primary, which now holds data no binary log position alone would give it
    in_host(added, "systemctl stop mariadb && rm -rf /var/lib/mysql && mkdir /var/lib/mysql && "
                   "chown mysql:mysql /var/lib/mysql && mariadb-install-db --user=mysql >/dev/null && "
                   "systemctl start mariadb")
    assert sql(added, "select count(*) from information_schema.schemata where schema_name = 'app'") == "0"
    reports = commands.deploy(REPO, ENV, limit=added)
    assert not [r.host for r in reports if r.failed], [(r.host, r.error) for r in reports if r.failed]
    sql(primary, "insert into app.checked values (5001, 'after the seed')")  # and it replicates from there on
    for _ in range(60):
        if sql(added, "select count(*) from app.checked") == "5001":
            break
        time.sleep(0.5)
    status = in_host(added, "mariadb --batch -e 'show replica status\\G'").stdout
    assert sql(added, "select count(*) from app.checked") == "5001", status
    address = load_env(REPO, ENV).hostvars()[primary]["ansible_host"]
    check = in_host(primary, "pt-table-checksum --replicate=percona.checksums --databases=app "
                             "--recursion-method=processlist --no-check-binlog-format "
                             f"F=/etc/mysql/fabstack-checksum.cnf,h={address} 2>&1")
    print(check.stdout)
    assert check.returncode == 0, check.stdout
    rows = [line.split() for line in check.stdout.splitlines() if line.strip().endswith("app.checked")]
    assert rows and rows[0][2] == "0", check.stdout  # ERRORS DIFFS ROWS ...: no difference on any replica
    for replica in replicas:  # each replica computed its own checksums of every chunk, equal to the primary's
        compared = sql(replica, "select count(*), sum(this_crc <> master_crc or this_cnt <> master_cnt) "
                                "from percona.checksums where db = 'app' and tbl = 'checked'").split()
        assert int(compared[0]) > 0 and compared[1] == "0", (replica, compared)


def test_a_point_in_time_restore_recovers_exactly_the_rows_committed_up_to_then(tier: None) -> None:
    primary = roles()[0]
    sql(primary, "drop table if exists app.timeline; create table app.timeline (id int primary key, at datetime "
                 "not null)")
    handle = backup_ops.open_backups(REPO, ENV, out=print)
    try:
        backup_ops.run(handle)
        name = handle.listing()[0]["name"]
        for row in range(1, 25):  # about six seconds of commits, each stamped with its own second
            sql(primary, f"insert into app.timeline values ({row}, now())")
            if row == 8:  # some of the logs replayed come from the archive, the rest from the server itself
                assert in_host(primary, f"{BACKUP_SCRIPT} archive-binlogs").returncode == 0
            time.sleep(0.25)
        seconds = sorted(set(sql(primary, "select at from app.timeline").splitlines()))
        chosen = seconds[len(seconds) // 2]
        backup_ops.restore(handle, name, None, "app_pitr", force=True, until=chosen)
        restored = sql(primary, "select group_concat(id order by id) from app_pitr.timeline")
        wanted = sql(primary, f"select group_concat(id order by id) from app.timeline where at <= '{chosen}'")
        print(f"restored {name} through {chosen}: ids {restored}")
        assert restored == wanted and 0 < len(wanted.split(",")) < 24
        with pytest.raises(FabstackError, match="before backup"):
            backup_ops.restore(handle, name, None, "app_pitr", force=True, until="2000-01-01 00:00:00")
    finally:
        handle.engine.drop(handle.place, "app_pitr")
        handle.host.close()


def test_each_backup_and_binary_log_is_copied_to_the_store_which_keeps_it_whatever_the_primary_does(
        tier: None) -> None:
    primary = roles()[0]
    handle = backup_ops.open_backups(REPO, ENV, out=print)
    try:
        backup_ops.run(handle)
        name = handle.listing()[0]["name"]
    finally:
        handle.host.close()
    sql(primary, "flush binary logs")
    assert in_host(primary, f"{BACKUP_SCRIPT} archive-binlogs").returncode == 0
    copy = f"/var/backups/offsite/mariadb/{name}"
    checked = in_host("mbackup1", f"cd {copy} && sha256sum --quiet -c SHA256SUMS")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    archived = set(in_host(primary, "ls /var/backups/mariadb/binlogs").stdout.split())
    copied = set(in_host("mbackup1", "ls /var/backups/offsite/mariadb/binlogs").stdout.split())
    assert archived and archived <= copied, archived - copied
    # the primary's own key, used as a compromised primary would: it adds files, never deletes or changes one
    store = load_env(REPO, ENV).hostvars()["mbackup1"]["ansible_host"]
    ssh = ("ssh -i /etc/fabstack/offsite/id_ed25519 -o UserKnownHostsFile=/etc/fabstack/offsite/known_hosts "
           "-o BatchMode=yes")
    deleting = in_host(primary, f"mkdir -p /tmp/fabstack-empty && rsync -a --delete -e '{ssh}' /tmp/fabstack-empty/ "
                                f"fabstack-offsite@{store}:mariadb/")
    shell = in_host(primary, f"{ssh} fabstack-offsite@{store} rm -rf /var/backups/offsite/mariadb")
    forged = in_host(primary, f"mkdir -p /tmp/fabstack-forged/{name} && echo forged > "
                              f"/tmp/fabstack-forged/{name}/SHA256SUMS && rsync -a -e '{ssh}' /tmp/fabstack-forged/ "
                              f"fabstack-offsite@{store}:mariadb/")
    in_host(primary, "rm -rf /tmp/fabstack-empty /tmp/fabstack-forged")
    print(f"offsite: {name} and {len(archived)} binary logs on mbackup1; delete through the primary's key: exit "
          f"{deleting.returncode}, a shell command: exit {shell.returncode}, an overwrite: exit {forged.returncode}")
    assert deleting.returncode != 0 and shell.returncode != 0
    still = in_host("mbackup1", f"cd {copy} && sha256sum --quiet -c SHA256SUMS")
    assert still.returncode == 0, still.stdout + still.stderr


def test_switchover_under_a_write_load_loses_nothing(probe: Probe) -> None:
    old, replicas = roles()
    writer = MariaWriter(max_seconds=60, probe=probe, addresses=tier_addresses()).start()
    try:
        time.sleep(2)
        f = fleet()
        try:
            started = time.monotonic()
            new = mf.switchover(f, None, check=False)
        finally:
            f.close()
        for _ in range(100):
            if writer.first_ack_after(started) or not writer.failing_since and len(writer.acked) > 10:
                break
            time.sleep(0.1)
        time.sleep(1)
    finally:
        writer.stop()
    assert roles() == (new, sorted([old, *[r for r in replicas if r != new]], key=replicas_order))
    present = probe.ids(load_env(REPO, ENV).hostvars()[new]["ansible_host"])
    lost = set(writer.acked) - present
    print(f"switchover {old} -> {new}: {len(writer.acked)} writes acknowledged, {len(lost)} lost, "
          f"writes unavailable for {writer.longest_outage():.2f}s at most")
    assert writer.acked and not lost
    assert max(writer.acked) > 0 and writer.acked[-1] in present  # writes went on after the switch
    assert all(replicating(r) for r in roles()[1])
    after = shop_route()  # the shop was repointed by the switchover itself, no release
    assert after["write"]["host"] == new and after["read"]["host"] in roles()[1]


def replicas_order(name: str) -> int:
    """A host's place in the inventory (the groups list hosts in that order)."""
    return list(load_env(REPO, ENV).inventory.hosts).index(name)


def test_failover_after_the_primary_is_killed_and_its_rejoin(probe: Probe) -> None:
    old, _ = roles()
    writer = MariaWriter(max_seconds=90, probe=probe, addresses=tier_addresses()).start()
    try:
        time.sleep(2)
        killed = time.monotonic()
        subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True)
        f = fleet()
        try:
            new = mf.promote(f, None, force=True, check=False)
        finally:
            f.close()
        for _ in range(100):
            if writer.first_ack_after(killed):
                break
            time.sleep(0.1)
        resumed = writer.first_ack_after(killed)
    finally:
        writer.stop()
        subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True)
    assert resumed is not None, "no write was acknowledged after the promotion"
    present = probe.ids(load_env(REPO, ENV).hostvars()[new]["ansible_host"])
    print(f"failover {old} -> {new}: writes resumed {resumed - killed:.2f}s after the kill; "
          f"{len(set(writer.acked) - present)} acknowledged writes lost (asynchronous replication)")
    assert roles()[0] == new
    for _ in range(60):  # the old primary boots again, as if its VM came back before anybody fenced it
        if in_host(old, "systemctl is-active -q mariadb").returncode == 0:
            break
        time.sleep(0.5)
    assert sql(old, "select @@read_only") == "1"  # its boot check found the new primary: it takes no writes
    f = fleet()
    try:
        mf.rejoin(f, old)
    finally:
        f.close()
    assert old in roles()[1] and replicating(old)
    assert probe.ids(load_env(REPO, ENV).hostvars()[old]["ansible_host"]) >= present
