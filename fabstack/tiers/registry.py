"""Every database tier fabstack knows, by name: the one list the rest of fabstack walks (docs/tiers.md)."""

from __future__ import annotations

from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.project import HostSetup, Project
from fabstack.tiers import mariadb, postgresql
from fabstack.tiers.base import Tier
from fabstack.tiers.topology import apply_topology, load_topology, recorded, topology_path

TIERS: dict[str, Tier] = {tier.name: tier for tier in (postgresql.TIER, mariadb.TIER)}


def running(project: Project) -> list[Tier]:
    """The tiers this env runs (their primary group has a host)."""
    return [tier for tier in TIERS.values() if tier.runs_in(project)]


def env_tier(project: Project, name: str | None) -> Tier:
    """The tier asked for, else the env's only one; refused when the env has none, or several and none asked."""
    tiers = [tier.name for tier in running(project)]
    if name is None and len(tiers) > 1:
        raise FabstackError(f"this env runs several db tiers: choose one with --tier ({', '.join(tiers)})",
                            key="--tier")
    chosen = name or (tiers[0] if tiers else "")
    if chosen not in tiers:
        raise FabstackError(f"no {shorten(chosen or 'db')} tier in env {project.env} (tiers here: "
                            f"{', '.join(tiers) or 'none'})", key="--tier")
    return TIERS[chosen]


def regroup(project: Project) -> None:
    """Deal each tier's db hosts as its recorded topology says (who is primary after a failover)."""
    path = topology_path(project.inventory.path)
    unknown = sorted(set(recorded(path)) - set(TIERS))
    if unknown:
        raise FabstackError(f"unknown db tier {unknown[0]!r} (tiers: {', '.join(TIERS)})", where=str(path),
                            key=unknown[0])
    for tier in TIERS.values():
        apply_topology(project.inventory, load_topology(project.inventory.path, tier.name), tier.groups(project))


def check_topologies(project: Project, setups: dict[str, HostSetup]) -> None:
    """Each tier's topology checks over the whole env."""
    for tier in TIERS.values():
        tier.check_topology(project, setups)
