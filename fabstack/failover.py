"""``inv failover ACTION``: the same day-2 commands for every db tier; the tier is the env's (or ``--tier``)."""

from __future__ import annotations

from pathlib import Path

from fabstack import mariadbfailover, pgfailover
from fabstack.dbfleet import env_tier, open_fleet
from fabstack.errors import FabstackError
from fabstack.project import load_project

ACTIONS = ("status", "promote-replica", "rejoin", "switchover")


# each tier's fleet and its module of actions (status, promote, rejoin, switchover)
TIERS = {"postgresql": (pgfailover.PgFleet, pgfailover), "mariadb": (mariadbfailover.MariaFleet, mariadbfailover)}


def run_action(root: Path, env: str, action: str, replica: str | None = None, host: str | None = None,
               force: bool = False, check: bool = False, tier: str | None = None) -> None:
    """``inv failover ACTION``: open the env's db fleet of the tier, do the action, close every connection."""
    if action not in ACTIONS:
        raise FabstackError(f"unknown action {action!r} ({', '.join(ACTIONS)})", key="failover")
    if action == "rejoin" and not host:
        raise FabstackError("rejoin needs --host HOST", key="--host")
    kind, actions = TIERS[env_tier(load_project(root, env), tier)]
    fleet = open_fleet(kind, root, env, db_hosts_named={"--replica": replica, "--host": host}, tier=tier)
    try:
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
