"""PostgreSQL under Patroni on its own sandbox network (inventory/patroni.yml): the running primary and replica
adopted, etcd on three hosts, PgBouncer behind HAProxy following the leader, synchronous mode. A leader killed
under a write load through the apps' DSN is replaced with nobody typing anything and no acknowledged write lost;
the old one comes back as a replica by itself. benchmarks/failover.py --tier patroni kills it ten times."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabstack.cli import commands
from fabstack.day2.verify import verify
from fabstack.tiers.env import open_fleet
from fabstack.tiers.postgresql import failover as fo
from tests.conftest import REPO, copy_project
from tests.integration.chaos import Writer, probe_ids, reset_probe_table
from tests.integration.conftest import env_up
from tests.integration.patronichaos import (
    ENV,
    kill_the_leader,
    leader,
    members,
    ready_for_a_failover,
    streaming,
    synchronous,
    wait_for,
)


@pytest.fixture(scope="module")
def cluster(podman_root: None) -> Iterator[None]:
    """The env's hosts, up and deployed for this module."""
    yield from env_up(ENV)


def test_adopted_cluster_has_one_leader_and_a_streaming_replica(cluster: None) -> None:
    found = members()
    assert sorted(m["role"] for m in found.values()) in (["leader", "replica"], ["leader", "sync_standby"]), found
    assert all(streaming(name) for name, m in found.items() if m["role"] != "leader")


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


def test_a_second_clone_sees_the_same_leader_and_a_switchover_under_load_loses_nothing(cluster: None,
                                                                                       tmp_path: Path) -> None:
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
    # a member that came back in the test before is a candidate once the leader names it synchronous standby
    wait_for("a cluster ready for a switchover", ready_for_a_failover, 60)
    reset_probe_table(ENV)
    writer = Writer(env=ENV, max_seconds=90).start()
    try:
        wait_for("the writer's first writes", lambda: len(writer.acked) > 20, 30)
        started = time.monotonic()
        fleet = open_fleet(REPO, ENV, out=print)
        try:
            new = fo.switchover(fleet, None, check=False)
        finally:
            fleet.close()
        took = time.monotonic() - started
        time.sleep(1)
    finally:
        writer.stop()
    lost = set(writer.acked) - probe_ids(ENV)
    back = wait_for(f"{old} following {new}", lambda: streaming(old), 60)
    outage = max((end - start for start, end in writer.outages), default=0.0)
    print(f"patroni switchover {old} -> {new}: command {took:.1f}s, longest write outage {outage:.1f}s, "
          f"{writer.errors} failed attempts, {len(writer.acked)} acknowledged, {len(lost)} lost; {old} streaming "
          f"{back:.1f}s later")
    assert new != old and leader() == new
    assert not lost
