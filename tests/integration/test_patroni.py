"""PostgreSQL under Patroni on its own sandbox network (inventory/patroni.yml): the running primary and replica
adopted, etcd on three hosts, PgBouncer behind HAProxy following the leader. A leader killed under a write load
through the apps' DSN is replaced with nobody typing anything; the old one comes back as a replica by itself."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from fabstack.cli import commands
from fabstack.day2.verify import verify
from fabstack.tiers.env import load_env
from tests.conftest import REPO
from tests.integration.chaos import Writer, probe_ids, reset_probe_table

ENV = "patroni"


@pytest.fixture(scope="module")
def cluster(podman_root: None) -> Iterator[list]:
    """The env's hosts, up and deployed (removed at the end unless FABSTACK_KEEP_SANDBOX is set)."""
    commands.sandbox_up(REPO, ENV)
    try:
        reports = commands.deploy(REPO, ENV)
        assert not [r.host for r in reports if r.failed], [(r.host, r.error) for r in reports if r.failed]
        yield reports
    finally:
        if not os.environ.get("FABSTACK_KEEP_SANDBOX"):
            commands.sandbox_down(REPO, ENV)


def rest_addresses() -> dict[str, str]:
    """Each db host's Patroni REST base URL."""
    project = load_env(REPO, ENV)
    urls = {}
    for name in project.inventory.select("patroni"):
        v = project.setup(name, None).vars
        urls[name] = f"http://{v['ansible_host']}:{v['patroni_rest_port']}"
    return urls


def members() -> dict[str, dict]:
    """Name -> member as the cluster says (asked of whichever member answers)."""
    for url in rest_addresses().values():
        try:
            with urllib.request.urlopen(f"{url}/cluster", timeout=2) as answer:
                return {m["name"]: m for m in json.load(answer)["members"]}
        except OSError:
            continue
    return {}


def leader() -> str:
    """The member holding the lease."""
    return next(name for name, m in members().items() if m["role"] == "leader")


def wait_for(what: str, ready: callable, seconds: float) -> float:
    """Wait (bounded) until ``ready()``; return the seconds it took, fail naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if ready():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {seconds}s; members: {members()}")


def streaming(name: str) -> bool:
    """Whether a member is a replica streaming from the leader."""
    member = members().get(name, {})
    return member.get("role") in ("replica", "sync_standby") and member.get("state") in ("streaming", "running")


def kill_the_leader_under_load() -> tuple[str, float, int, int]:
    """Kill the leader's container while a writer writes through PgBouncer; wait for writes to resume by
    themselves. Returns the old leader, seconds from the kill to the first acknowledged write, writes
    acknowledged, and those lost."""
    reset_probe_table(ENV)
    old = leader()
    writer = Writer(env=ENV, max_seconds=120).start()
    try:
        wait_for("the writer's first writes", lambda: len(writer.acked) > 20, 30)
        killed = time.monotonic()
        subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True, timeout=60)
        wait_for("writes resuming after the kill", lambda: writer.first_ack_after(killed) is not None, 60)
        resumed = writer.first_ack_after(killed) - killed  # type: ignore[operator]
        time.sleep(1)
    finally:
        writer.stop()
    lost = set(writer.acked) - probe_ids(ENV)
    return old, resumed, len(writer.acked), len(lost)


def bring_back(old: str) -> float:
    """Start a killed member again; return the seconds until it streams from the new leader by itself."""
    subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True, timeout=60)
    return wait_for(f"{old} streaming again as a replica", lambda: streaming(old), 120)


def test_adopted_cluster_has_one_leader_and_a_streaming_replica(cluster: list) -> None:
    found = members()
    assert sorted(m["role"] for m in found.values()) == ["leader", "replica"], found
    assert all(streaming(name) for name, m in found.items() if m["role"] != "leader")


def test_a_second_deploy_changes_nothing_and_verify_passes(cluster: list) -> None:
    again = commands.deploy(REPO, ENV)
    assert {r.host: r.count("changed") for r in again} == {r.host: 0 for r in again}
    assert verify(REPO, ENV) == 0


def test_a_killed_leader_is_replaced_with_nobody_typing_and_rejoins_by_itself(cluster: list) -> None:
    old, resumed, acked, lost = kill_the_leader_under_load()
    try:
        new = leader()
        assert new != old
        back = bring_back(old)
    finally:
        subprocess.run(["podman", "start", f"fabstack-{old}"], capture_output=True, timeout=60)
    print(f"patroni failover (async): writes resumed {resumed:.1f}s after the kill of {old}, {new} leads; "
          f"{acked} writes acknowledged, {lost} lost; {old} streaming again {back:.1f}s after its restart")
    # goal 15 s: a lease of patroni_ttl (10 s) runs out, the replica promotes, HAProxy's next check follows
    assert resumed < 30, f"writes resumed only {resumed:.1f}s after the kill"


def test_synchronous_mode_loses_no_acknowledged_write(cluster: list) -> None:
    def synchronous(wanted: bool) -> None:
        reports = commands.deploy(REPO, ENV, limit="patroni", roles="patroni",
                                  overrides=[f"postgresql_synchronous={str(wanted).lower()}"])
        assert not [r.host for r in reports if r.failed], [(r.host, r.error) for r in reports if r.failed]

    synchronous(True)
    old = ""
    try:
        wait_for("a synchronous standby", lambda: any(m["role"] == "sync_standby" for m in members().values()), 60)
        old, resumed, acked, lost = kill_the_leader_under_load()
        back = bring_back(old)
        print(f"patroni failover (synchronous): writes resumed {resumed:.1f}s after the kill, {acked} "
              f"acknowledged, {lost} lost; {old} streaming again {back:.1f}s after its restart")
        assert lost == 0
    finally:
        if old:
            subprocess.run(["podman", "start", f"fabstack-{old}"], capture_output=True, timeout=60)
        synchronous(False)
