"""An env as every command above the engine loads it: the engine's project with what the stack and the tiers
know of a whole env (``EnvRules``): the recorded db topology, the whole-env input checks, the budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.project import EnvRules, HostSetup, Project, load_project
from fabstack.engine.runner import select_hosts
from fabstack.stack.apps import APPS_KEY, env_apps
from fabstack.stack.budget import Budget, compute_budget
from fabstack.stack.checks import check_fleet
from fabstack.tiers.base import Tier
from fabstack.tiers.fleet import Fleet
from fabstack.tiers.registry import TIERS, check_topologies, env_tier, regroup


def check_env(project: Project, setups: dict[str, HostSetup]) -> None:
    """Every whole-env input check, before any host is touched: addresses and ports, each tier's topology, and
    the apps' declarations."""
    check_fleet(project, setups)
    check_topologies(project, setups)
    env_apps(project)


def plan_env(project: Project, setups: dict[str, HostSetup], hostfacts: dict[str, dict[str, Any]]) -> Budget:
    """The env's budget: what each role commits, then each tier's part."""
    return compute_budget(project, setups, hostfacts, [tier.budget for tier in TIERS.values()])


RULES = EnvRules(settings=(APPS_KEY,), regroup=regroup, check=check_env, plan=plan_env)


def load_env(root: Path, env: str, check_patterns: bool = True) -> Project:
    """Load an env (inventory, site.yml, roles) with the stack's and the tiers' rules; nothing is contacted."""
    return load_project(root, env, check_patterns, rules=RULES)


def open_fleet(root: Path, env: str, tier: str | None = None, out: Callable[[str], None] = print,
               db_hosts_named: dict[str, str | None] | None = None) -> Fleet:
    """Load the env, check all of it as a deploy does (and that each ``--option: name`` in ``db_hosts_named`` is
    a db host) before any host is contacted, and prepare to reach the hosts of its tier (the one asked for, else
    the env's only one)."""
    project = load_env(root, env)
    chosen: Tier = env_tier(project, tier)
    fleet = chosen.fleet(project=project, out=out, tier=chosen.name, groups=chosen.groups(project))
    for key, name in (db_hosts_named or {}).items():
        if name is not None and name not in fleet.db_hosts:
            raise FabstackError(f"{shorten(name)} is not a db host (db hosts: {', '.join(fleet.db_hosts)})", key=key)
    select_hosts(fleet.project)
    return fleet
