"""Day-2 PostgreSQL when Patroni runs the tier: the cluster itself says who leads (its REST API, asked on a member
over fabstack's SSH path), and changes go through patronictl. Nothing is recorded on the operator's machine, so a
second clone of the repo, a CI runner or a laptop that was offline sees the same leader.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.stack.hostfiles import PATRONI_CA, PATRONI_CONFIG
from fabstack.tiers.fleet import Fleet, plan_or_stop
from fabstack.tiers.postgresql.state import DbState

# The role a member reports, read as the tier's words: the lease holder is the primary.
LEADER_ROLES = ("leader", "standby_leader")
RUNNING_STATES = ("running", "streaming")


def runs_under_patroni(fleet: Fleet) -> bool:
    """Whether the tier's db hosts carry the patroni role."""
    return any("patroni" in {role.name for role in fleet.project.roles_for(host)} for host in fleet.db_hosts)


def members(fleet: Fleet) -> list[dict[str, Any]]:
    """The cluster's members as Patroni's REST API lists them, asked of the first db host that answers."""
    fleet.connect(fleet.db_hosts)
    for name in fleet.db_hosts:
        host = fleet.host(name)
        if not host.reachable:
            continue
        port = fleet.project.setup(name, None).vars["patroni_rest_port"]
        out = host.run(f"curl -sf -m 3 --cacert {PATRONI_CA} https://{fleet.address(name)}:{port}/cluster",
                       check=False)
        try:
            return list(json.loads(out)["members"])
        except (ValueError, KeyError):
            continue
    raise FabstackError("no member's Patroni answers: is etcd up, and Patroni running on the db hosts?")


def leader_of(found: list[dict[str, Any]]) -> str:
    """The lease holder's name ("" while nobody holds it)."""
    return next((m["name"] for m in found if m.get("role") in LEADER_ROLES), "")


def lag_of(member: dict[str, Any]) -> str:
    """A member's replication lag in bytes as Patroni reports it ("" for the leader, "?" if unknown)."""
    lag = member.get("lag", "")
    return "" if member.get("role") in LEADER_ROLES else str(lag if lag != "" else "?")


def status(fleet: Fleet) -> list[DbState]:
    """Print the members, their roles, state, timeline and lag, and the lease holder; return their states."""
    found = members(fleet)
    fleet.out(f"{'HOST':<8}{'ROLE':<14}{'STATE':<11}{'TL':>3} {'LAG B':>10}")
    states = []
    for m in sorted(found, key=lambda m: m["name"]):
        fleet.out(f"{m['name']:<8}{m.get('role', ''):<14}{m.get('state', ''):<11}{m.get('timeline', ''):>3} "
                  f"{lag_of(m):>10}")
        states.append(DbState(m["name"], up=m.get("state") in RUNNING_STATES,
                              in_recovery=m.get("role") not in LEADER_ROLES, timeline=int(m.get("timeline") or 0)))
    missing = sorted(set(fleet.db_hosts) - {m["name"] for m in found})
    states += [DbState(name, note="not a member (Patroni down?)") for name in missing]
    for name in missing:
        fleet.out(f"{name:<8}{'-':<14}{'absent':<11}")
    fleet.out(f"leader (lease holder): {leader_of(found) or 'none: writes wait until a member takes the lease'}")
    return states


def patronictl(fleet: Fleet, on: str, args: str) -> str:
    """patronictl on a db host, with that host's settings file (its REST credentials stay there)."""
    return fleet.host(on).run(f"patronictl -c {PATRONI_CONFIG} {args}", timeout=180)


def candidate(found: list[dict[str, Any]], wanted: str | None) -> str:
    """The replica to lead next: the one asked for, else the running replica with the least lag."""
    replicas = [m for m in found if m.get("role") not in LEADER_ROLES and m.get("state") in RUNNING_STATES]
    if wanted:
        if wanted not in {m["name"] for m in found}:
            raise FabstackError(f"{wanted} is not a member of the cluster", key="--replica")
        return wanted
    if not replicas:
        raise FabstackError("no running replica to lead", key="--replica")
    # in synchronous mode Patroni hands the lease only to the synchronous standby
    synchronous = [m for m in replicas if m.get("role") == "sync_standby"]
    return min(synchronous or replicas, key=lambda m: float(m.get("lag") or 0))["name"]


def wait_for_leader(fleet: Fleet, target: str, seconds: float = 60) -> None:
    """Wait (bounded) until ``target`` holds the lease."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if leader_of(members(fleet)) == target:
            return
        time.sleep(0.5)
    raise FabstackError(f"{target} does not hold the lease {seconds:.0f}s later; see `inv failover status`",
                        host=target)


def switchover(fleet: Fleet, replica: str | None, check: bool,
               held: Callable[[str], AbstractContextManager[None]] = lambda target: nullcontext()) -> str:
    """A planned move of the lease to a replica (Patroni stops the leader cleanly and promotes the candidate
    once it has everything); the old leader follows as a replica. ``held(target)`` is entered around the move
    once the plan is checked (the clients' side: PgBouncer paused)."""
    found = members(fleet)
    old = leader_of(found)
    target = candidate(found, replica)
    reasons = [] if old else ["the cluster has no leader: use `inv failover promote-replica`"]
    if old == target:
        reasons.append(f"{target} already leads")
    if plan_or_stop(fleet, f"patronictl switchover from {old or 'nobody'} to {target}", reasons, target, check):
        return target
    started = time.monotonic()
    with held(target):
        said = patronictl(fleet, target, f"switchover --leader {shlex.quote(old)} --candidate "
                                         f"{shlex.quote(target)} --force")
        if "failed" in said.lower():  # patronictl reports a refused switchover and still exits 0
            raise FabstackError(f"Patroni refused: {said.splitlines()[-1]}", host=target)
        wait_for_leader(fleet, target)
    fleet.out(f"switchover done in {time.monotonic() - started:.1f}s: {target} leads, {old} follows")
    return target


def promote(fleet: Fleet, replica: str | None, force: bool, check: bool) -> str:
    """A manual failover to a replica, for when the cluster cannot decide by itself (say, no replica within the
    lag bound); Patroni refuses what would lose data unless it is forced."""
    found = members(fleet)
    target = candidate(found, replica)
    old = leader_of(found)
    reasons = [f"{old} holds the lease and runs: use `inv failover switchover`"] if old and not force else []
    if plan_or_stop(fleet, f"patronictl failover to {target} (leader now: {old or 'nobody'})", reasons, target,
                    check):
        return target
    patronictl(fleet, target, f"failover --candidate {shlex.quote(target)} --force")
    wait_for_leader(fleet, target)
    fleet.out(f"failover done: {target} leads")
    return target


def rejoin(fleet: Fleet, name: str) -> None:
    """Make a member a streaming replica again: Patroni rewinds a returning old leader by itself; one that
    cannot follow is rebuilt from the leader (patronictl reinit)."""
    found = {m["name"]: m for m in members(fleet)}
    if name not in fleet.db_hosts:
        raise FabstackError(f"{name} is not a db host", key="--host")
    member = found.get(name, {})
    if member.get("role") in LEADER_ROLES:
        raise FabstackError(f"{name} is the current leader", key="--host")
    if member.get("state") in RUNNING_STATES:
        fleet.out(f"{name}: already a running replica (lag {lag_of(member)} bytes)")
        return
    leader = leader_of(list(found.values()))
    patronictl(fleet, leader, f"reinit --force --wait {shlex.quote(scope(fleet, name))} {shlex.quote(name)}")
    fleet.out(f"{name}: rebuilt from {leader}")


def scope(fleet: Fleet, name: str) -> str:
    """The cluster's name in etcd."""
    return str(fleet.project.setup(name, None).vars["patroni_scope"])
