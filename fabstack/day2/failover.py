"""``inv failover ACTION``: the same day-2 commands for every db tier; the tier is the env's (or ``--tier``)."""

from __future__ import annotations

from pathlib import Path

from fabstack.engine.errors import FabstackError
from fabstack.engine.hostlock import WAIT_SECONDS
from fabstack.tiers.env import open_fleet
from fabstack.tiers.registry import TIERS

ACTIONS = ("status", "promote-replica", "rejoin", "switchover")


def run_action(root: Path, env: str, action: str, replica: str | None = None, host: str | None = None,
               force: bool = False, check: bool = False, tier: str | None = None, lock_wait: float = WAIT_SECONDS,
               force_unlock: bool = False) -> None:
    """``inv failover ACTION``: open the env's db fleet of the tier, take the locks of its db hosts that answer
    (an action that changes something), do the action, give the locks up and close every connection."""
    if action not in ACTIONS:
        raise FabstackError(f"unknown action {action!r} ({', '.join(ACTIONS)})", key="failover")
    if action == "rejoin" and not host:
        raise FabstackError("rejoin needs --host HOST", key="--host")
    fleet = open_fleet(root, env, tier, db_hosts_named={"--replica": replica, "--host": host})
    actions = TIERS[fleet.tier].actions
    try:
        if action != "status" and not check:
            fleet.lock(fleet.db_hosts, f"failover {action} --env {env}", wait=lock_wait, force=force_unlock)
        if action == "status":
            actions.status(fleet)
        elif action == "promote-replica":
            actions.promote(fleet, replica, force, check)
        elif action == "rejoin":
            assert host is not None
            actions.rejoin(fleet, host)
        else:
            actions.switchover(fleet, replica, check)
    finally:
        fleet.close()
