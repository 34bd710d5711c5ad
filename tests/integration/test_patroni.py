"""PostgreSQL under Patroni on its own sandbox network (inventory/patroni.yml): the running primary and replica
adopted, etcd on three hosts, PgBouncer behind HAProxy following the leader, synchronous mode. A leader killed
under a write load through the apps' DSN is replaced with nobody typing anything and no acknowledged write lost;
the old one comes back as a replica by itself. A leader cut off from its peers stands down before another leads
and comes back without what it wrote alone; one etcd member lost changes nothing, two stop the writes (nobody
leads) until one returns. A switchover under load loses nothing, and a deploy from a second clone meanwhile waits
for its host locks (or refuses naming it) and leaves the routing on the new leader. Last, both db hosts are
destroyed and the cluster comes back onto a spare host from the backup host's pgBackRest repository alone, to a
chosen second and to the newest archived point. benchmarks/failover.py --tier patroni kills the leader ten
times."""

from __future__ import annotations

import calendar
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fabstack.cli import commands
from fabstack.day2.failover import run_action
from fabstack.day2.verify import verify
from fabstack.engine.agent import LOCK_PATH
from fabstack.tiers.env import open_fleet
from fabstack.tiers.postgresql import failover as fo
from tests.conftest import REPO, copy_project
from tests.integration.chaos import PROBE_TABLE, Writer, pgbouncer_dsn, probe_ids
from tests.integration.conftest import env_up, in_host
from tests.integration.patronichaos import (
    ENV,
    archived,
    cut_off,
    destroy,
    env_addresses,
    etcd_members_away_from,
    fresh_probe_table,
    kill_the_leader,
    leader,
    local_sql,
    members,
    ready_for_a_failover,
    reconnect,
    start_etcd,
    stop_etcd,
    streaming,
    synchronous,
    wait_for,
    wal_file_now,
    write_marks,
    writes_acknowledged_locally,
)


@pytest.fixture(scope="module")
def cluster(podman_root: None) -> Iterator[None]:
    """The env's hosts, up and deployed for this module."""
    yield from env_up(ENV)


def test_adopted_cluster_has_one_leader_and_a_streaming_replica(cluster: None) -> None:
    found = members()
    assert sorted(m["role"] for m in found.values()) in (["leader", "replica"], ["leader", "sync_standby"]), found
    assert all(streaming(name) for name, m in found.items() if m["role"] != "leader")
    # adopted as they ran, with nothing left waiting for a restart (Patroni's cluster_name was given before)
    assert not [name for name, m in found.items() if m.get("pending_restart")], found


def test_a_second_deploy_changes_nothing_and_verify_passes(cluster: None) -> None:
    again = commands.deploy(REPO, ENV)
    assert {r.host: r.count("changed") for r in again} == {r.host: 0 for r in again}
    assert verify(REPO, ENV) == 0


def test_a_killed_leader_is_replaced_with_nobody_typing_and_no_acknowledged_write_lost(cluster: None) -> None:
    # the env runs in synchronous mode (inventory/patroni.yml): a standby confirms each commit before it is
    # acknowledged, so the one Patroni promotes has every acknowledged write
    assert synchronous()
    kill = kill_the_leader()
    print(f"patroni failover (synchronous): writes resumed {kill.resumed:.1f}s after the kill of {kill.old}, "
          f"{kill.new} leads; {kill.acked} writes acknowledged, {kill.lost} lost; {kill.old} streaming again "
          f"{kill.back:.1f}s after its restart" + ("; the writer's own connection was left unanswered"
                                                    if kill.stranded else ""))
    assert kill.new != kill.old
    assert kill.lost == 0
    # goal 15 s: the lease (patroni_ttl, 10 s) runs out, the replica promotes, HAProxy's next checks follow
    assert kill.resumed < 30, f"writes resumed only {kill.resumed:.1f}s after the kill"


def a_loaded_cluster_ready() -> None:
    """Wait (bounded) for a leader with a standby it may fail over to, and for the apps' DSN taking writes."""
    wait_for("a cluster ready for a failover", ready_for_a_failover, 90)
    wait_for("the apps' DSN taking writes (PgBouncer holds a failed login for a moment)", fresh_probe_table, 30)


def test_a_leader_cut_off_stands_down_before_another_leads_and_returns_without_its_lone_writes(
        cluster: None) -> None:
    a_loaded_cluster_ready()
    with psycopg.connect(pgbouncer_dsn(env=ENV), autocommit=True, prepare_threshold=None) as conn:
        conn.execute("drop table if exists cut_marks")
        conn.execute("create table cut_marks (side text not null, at timestamptz not null default clock_timestamp())")
    old = leader()
    (other,) = [name for name in members() if name != old]
    writer = Writer(env=ENV, max_seconds=150).start()
    try:
        wait_for("the writer's first writes", lambda: len(writer.acked) > 20, 30)
        cut_off(old)
        cut = time.time()  # from here no packet passes: a write through the apps' DSN is the new leader's
        try:
            # the cut-off leader still takes writes that wait for no standby, until Patroni demotes it
            lone = writes_acknowledged_locally(old, "cut_marks", seconds=25)
            wait_for(f"{other} leading", lambda: leader(via=other) == other, 60)
            first_new = wait_for_first_write_after(other, cut)
        finally:
            reconnect(old)
        time.sleep(1)
    finally:
        writer.stop()
    lost = set(writer.acked) - probe_ids(ENV)
    back = wait_for(f"{old} streaming again as a replica of {other}", lambda: streaming(old), 120)
    print(f"patroni partition: {old} cut off; it acknowledged {len(lone)} writes alone, the last "
          f"{max(lone, default=cut) - cut:.1f}s after the cut; {other} took its first write "
          f"{first_new - cut:.1f}s after the cut; {old} streaming {back:.1f}s after the cut was lifted")
    # never two primaries acknowledging writes at once
    assert max(lone, default=cut) < first_new
    assert not lost
    # what the cut-off leader wrote alone is gone from it (rewound), not kept beside the new leader's history
    counts = {name: local_sql(name, "select count(*) from cut_marks").stdout.strip() for name in (old, other)}
    assert counts == {old: "0", other: "0"}, counts


def wait_for_first_write_after(name: str, moment: float) -> float:
    """When (wall clock, the server's own time) a member first took a write of the apps' writer after ``moment``."""
    query = f"select coalesce(extract(epoch from min(at)), 0) from {PROBE_TABLE} where at > to_timestamp({moment})"
    found: list[float] = []
    wait_for(f"a write through the apps' DSN on {name}", lambda: bool(
        found.append(float(local_sql(name, query).stdout.strip() or 0)) or found[-1]), 60)
    return found[-1]


def test_one_etcd_member_lost_changes_nothing_two_lost_stop_writes_until_one_returns(cluster: None) -> None:
    a_loaded_cluster_ready()
    old = leader()
    (other,) = [name for name in members() if name != old]
    # two etcd members away from the leader's host: the third member's first, then the other db host's
    away = etcd_members_away_from(old)
    assert len(away) == 2, away
    writer = Writer(env=ENV, max_seconds=180).start()
    try:
        wait_for("the writer's first writes", lambda: len(writer.acked) > 20, 30)
        stop_etcd(away[0])
        try:
            before = len(writer.acked)
            time.sleep(12)  # longer than the lease (patroni_ttl, 10 s): it was renewed with two members of three
            assert leader(via=old) == old
            assert len(writer.acked) > before + 50 and writer.failing_since is None
            stop_etcd(away[1])
            lost_quorum = time.monotonic()
            # no majority: the leader cannot renew its lease and stops taking writes; nobody else leads
            wait_for("every member read-only", lambda: all(
                local_sql(name, "select pg_is_in_recovery()").stdout.strip() == "t" for name in (old, other)), 60)
            stalled = time.monotonic() - lost_quorum
            start_etcd(away[1])
            returned = time.monotonic()
            wait_for("writes through the apps' DSN again", lambda: writer.first_ack_after(returned) is not None, 90)
            resumed = writer.first_ack_after(returned) - returned
        finally:
            start_etcd(away[0])
            start_etcd(away[1])
        time.sleep(1)
    finally:
        writer.stop()
    lost = set(writer.acked) - probe_ids(ENV)
    print(f"patroni etcd: one of three members stopped, no outage; two stopped: every member read-only "
          f"{stalled:.1f}s later; writes back {resumed:.1f}s after one returned; {len(lost)} of "
          f"{len(writer.acked)} acknowledged writes lost")
    assert not lost


def test_a_switchover_under_load_loses_nothing_and_a_deploy_from_a_second_clone_waits_for_it(
        cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a_loaded_cluster_ready()
    # a second clone of the repo: no state of the first one's commands, only the env's key and secrets
    second = copy_project(tmp_path / "second-clone", with_state=True)
    lines: list[str] = []
    fleet = open_fleet(second, ENV, out=lines.append)
    try:
        fo.status(fleet)
    finally:
        fleet.close()
    old = leader()
    assert f"leader (lease holder): {old}" in lines, lines
    inv = str(Path(sys.executable).parent / "inv")

    def deploy_from_second_clone(lock_wait: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([inv, "--search-root", str(REPO), "deploy", "--env", ENV, "--root", str(second),
                               "--lock-wait", str(lock_wait)], capture_output=True, text=True, timeout=600)

    # the real switchover (timed), holding the db hosts 20 s longer than it needs, so the deploys surely meet
    # its locks
    real, took = fo.switchover, []

    def switchover_then_hold(*args: object, **kwargs: object) -> str:
        started = time.monotonic()
        new = real(*args, **kwargs)  # type: ignore[arg-type]
        took.append(time.monotonic() - started)
        time.sleep(20)
        return new

    monkeypatch.setattr(fo, "switchover", switchover_then_hold)
    switched: list[BaseException] = []
    switchover = threading.Thread(target=lambda: run_switchover(switched))
    writer = Writer(env=ENV, max_seconds=180).start()
    try:
        wait_for("the writer's first writes", lambda: len(writer.acked) > 20, 30)
        switchover.start()
        wait_for(f"the switchover's lock on {old}", lambda: in_host(old, f"test -e {LOCK_PATH}").returncode == 0, 60)
        refused = deploy_from_second_clone(lock_wait=0)
        waited = deploy_from_second_clone(lock_wait=300)
        switchover.join(timeout=300)
        time.sleep(1)
    finally:
        writer.stop()
    assert not switched, switched
    new = leader()
    lost = set(writer.acked) - probe_ids(ENV)
    back = wait_for(f"{old} following {new}", lambda: streaming(old), 60)
    outage = max((end - start for start, end in writer.outages), default=0.0)
    held = max((done - sent for sent, done in writer.timings), default=0.0)
    print(f"patroni switchover {old} -> {new}: command {took[0]:.1f}s, longest write outage {outage:.1f}s, "
          f"longest a write waited {held:.1f}s, {writer.errors} failed attempts, {len(writer.acked)} acknowledged, "
          f"{len(lost)} lost; {old} streaming {back:.1f}s later")
    assert new != old and not lost
    # PgBouncer held the writes while the lease moved: they waited, none failed
    assert writer.errors == 0, f"{writer.errors} writes failed during the switchover"
    holder = f"running `failover switchover --env {ENV}`"
    # refused naming the other command and its owner (this process), and nothing changed
    assert refused.returncode != 0 and holder in refused.stdout and f"pid {os.getpid()}" in refused.stdout, \
        refused.stdout[-2000:]
    # waited for it, then planned again from what the switchover left, and converged
    assert waited.returncode == 0, waited.stdout[-3000:]
    assert "waiting: locked by" in waited.stdout and holder in waited.stdout
    with psycopg.connect(pgbouncer_dsn(env=ENV), autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute("select host(inet_server_addr()), pg_is_in_recovery()").fetchone()
    assert row == (env_addresses()[new], False)


def run_switchover(failures: list[BaseException]) -> None:
    """``inv failover switchover`` of the env, as this process (its locks name this process); failures kept."""
    try:
        run_action(REPO, ENV, "switchover")
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failures.append(exc)


# Seconds of writes after the chosen second's WAL was archived and before the db hosts are destroyed.
UNARCHIVED_SECONDS = 15


def test_the_cluster_comes_back_from_the_backup_host_alone_to_a_chosen_second(cluster: None) -> None:
    """Last in this module: it destroys both db hosts."""
    a_loaded_cluster_ready()
    commands.backup(REPO, ENV, "run", kind="incr")
    marks = write_marks("pitr_marks", max_seconds=240)
    try:
        wait_for("the first marks", lambda: len(marks.acked) > 20, 30)
        chosen = int(time.time()) + 3
        wait_for("marks past the chosen second", lambda: max(marks.sent.values()) > chosen + 2, 30)
        # once the WAL written at the chosen second is in the archive, the db hosts may go; they go while
        # writes go on, as a disk dies: what the leader had not archived yet is what the RPO counts
        wal = wal_file_now()
        wait_for(f"{wal} archived", lambda: archived(wal), 120)
        time.sleep(UNARCHIVED_SECONDS)
    finally:
        marks.finish()
    last_ack = max(marks.acked.values())
    destroy(*members())
    until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(chosen))
    to_second = commands.backup(REPO, ENV, "restore", name=None, target="prestore1", into=None, force=False,
                                until=until)
    restored = {int(i) for i in local_sql("prestore1", "select id from pitr_marks").stdout.split()}
    before = {i for i, at in marks.acked.items() if at < chosen}
    after = {i for i, at in marks.sent.items() if at > chosen}
    newest = commands.backup(REPO, ENV, "restore", name=None, target="prestore1", into=None, force=True, until=None)
    newest_rows = {int(i) for i in local_sql("prestore1", "select id from pitr_marks").stdout.split()}
    unarchived = len(set(marks.acked) - newest_rows)
    newest_at = calendar.timegm(time.strptime(newest["last_transaction"][:19], "%Y-%m-%d %H:%M:%S"))
    print(f"pgbackrest point-in-time restore: both db hosts destroyed; through {until} UTC onto prestore1 in "
          f"{to_second['seconds']:.1f}s ({len(restored)} marks: {len(before)} acknowledged before, "
          f"{len(after & restored)} sent after); the newest point in {newest['seconds']:.1f}s, "
          f"RPO {last_ack - newest_at:.1f}s ({unarchived} of {len(marks.acked)} acknowledged marks not yet archived)")
    assert before <= restored, sorted(before - restored)[:10]
    assert not after & restored, sorted(after & restored)[:10]
    assert restored <= newest_rows
