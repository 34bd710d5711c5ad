"""What a database tier is to fabstack: the contract every tier module keeps (docs/tiers.md says how to add one).

A tier is data plus functions: the roles that build it, the settings naming its groups, its part of the env's
budget, the day-2 actions ``inv failover`` runs on its fleet, and how ``inv backup.*`` restores its backups.
Nothing outside ``fabstack/tiers/`` names a tier: the registry (``fabstack.tiers.registry``) is walked instead.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fabstack.engine.errors import FabstackError
from fabstack.engine.project import HostSetup, Project
from fabstack.engine.remote import RemoteHost
from fabstack.stack.budget import TierBudget
from fabstack.stack.hostfiles import BACKUP_SCRIPT
from fabstack.tiers.fleet import Fleet
from fabstack.tiers.topology import DbGroups


class FailoverActions(Protocol):
    """A tier's ``inv failover`` actions, each on its fleet (a tier's ``failover`` module is one)."""

    def status(self, fleet: Any) -> list[Any]:
        """Print one table of the tier's hosts; return their states."""
        ...

    def promote(self, fleet: Any, replica: str | None, force: bool, check: bool) -> str:
        """Make a replica the primary after the primary failed; return the new primary."""
        ...

    def rejoin(self, fleet: Any, name: str) -> None:
        """Make a fenced old primary a replica of the current primary."""
        ...

    def switchover(self, fleet: Any, replica: str | None, check: bool) -> str:
        """A planned move of the primary that loses nothing; return the new primary."""
        ...


@dataclass(frozen=True)
class BackupPlace:
    """Where a tier's backups live: the backup host (connected), the backups' folder there, the host's settings."""

    host: RemoteHost
    dir: str
    settings: dict[str, Any]

    def folder(self, name: str) -> str:
        """Where one backup lives."""
        return f"{self.dir}/{name}"

    def script(self, *args: str, check: bool = True) -> str:
        """Run the backups role's script on the backup host with quoted arguments; its output."""
        return self.host.run(shlex.join([BACKUP_SCRIPT, *args]), check=check)


class BackupEngine(Protocol):
    """How a tier's backups are restored (the backups role's script takes them, the same for every tier)."""

    # a database's dump file in a backup's folder ends so
    suffix: str
    # whether a restore can replay logs up to a chosen second (``--until``)
    point_in_time: bool
    # whether a backup can be restored on another host than the backup host
    restores_elsewhere: bool

    def databases_on(self, host: RemoteHost) -> set[str]:
        """The databases a host's server holds."""
        ...

    def refuse_destination(self, host: RemoteHost) -> str:
        """Why a restore cannot go to this host ("" when it can)."""
        ...

    def load(self, place: BackupPlace, name: str, database: str, scratch: str, until: str | None) -> None:
        """(Re)create ``scratch`` on the backup host from backup ``name``'s dump of ``database``."""
        ...

    def load_into(self, place: BackupPlace, destination: RemoteHost, name: str, database: str, scratch: str) -> None:
        """(Re)create ``scratch`` on another host from backup ``name``'s dump of ``database``."""
        ...

    def drop(self, place: BackupPlace, database: str) -> None:
        """Drop a scratch database on the backup host."""
        ...


@dataclass(frozen=True)
class Tier:
    """One database tier: its roles and groups, its budget, its fleet and its failover actions."""

    # the ``--tier`` value and the key of its part of the recorded topology (inventory/ENV.topology.yml)
    name: str
    # the role every db host of the tier runs, and the role a replica adds to it
    server_role: str
    replica_role: str
    # the settings (defaults of the server role) naming the groups of the primary, the replicas and fenced hosts
    group_settings: tuple[str, str, str]
    # how the tier's hosts are asked and acted on for one command, and what it does on them
    fleet: type[Fleet]
    actions: FailoverActions
    # the tier's part of the env's connection and memory budget
    budget: TierBudget
    # how its backups are restored
    backups: BackupEngine

    def groups(self, project: Project) -> DbGroups:
        """The tier's group names in this env (empty names when no role of the env defines them)."""
        return DbGroups.from_values(project.env_values(), self.group_settings)

    def runs_in(self, project: Project) -> bool:
        """Whether the env runs this tier: its primary group has a host."""
        primary = self.groups(project).primary
        return bool(primary and project.inventory.groups.get(primary) and project.inventory.select(primary))

    def check_topology(self, project: Project, setups: dict[str, HostSetup]) -> None:
        """One primary (never two, never none while the tier is deployed), and a replica role only beside the
        server role; refused naming the inventory or site.yml, the group and the host."""
        with_server = [s for s in setups.values() if self.server_role in {r.name for r in s.roles}]
        if not with_server:
            return
        inventory = str(project.inventory.path)
        primary_key, replica_key, _ = self.group_settings
        v = with_server[0].vars
        groups = project.groups()
        primaries = groups.get(v[primary_key], [])
        replicas = groups.get(v[replica_key], [])
        if len(primaries) > 1:
            raise FabstackError(f"two primaries: {', '.join(primaries)} are both in group {v[primary_key]}",
                                where=inventory, key=v[primary_key], host=primaries[1])
        if not primaries:
            host = replicas[0] if replicas else with_server[0].name
            what = "a replica without a primary" if replicas else "no primary"
            raise FabstackError(f"{what}: group {v[primary_key]} is empty", where=inventory, key=v[primary_key],
                                host=host)
        for name in replicas:
            roles = {r.name for r in setups[name].roles} if name in setups else set()
            if self.replica_role in roles and self.server_role not in roles:
                raise FabstackError(f"has {self.replica_role} but not {self.server_role}", where="site.yml",
                                    key="roles", host=name)


_ACTIONS = ("status", "promote", "rejoin", "switchover")
_BACKUP_MEMBERS = ("suffix", "point_in_time", "restores_elsewhere", "databases_on", "refuse_destination", "load",
                   "load_into", "drop")


def contract_problems(tier: Tier, role_folders: list[Path]) -> list[str]:
    """What a tier lacks of the contract, one line each (none for a tier that keeps it): its roles exist among
    ``role_folders`` and the server role's defaults name its three group settings; its fleet is a ``Fleet``; its
    actions and backup engine have every member; its budget can be called."""
    problems = []
    for role in (tier.server_role, tier.replica_role):
        if not any((folder / role / "role.py").is_file() for folder in role_folders):
            problems.append(f"{tier.name}: no role {role}")
    defaults = next((folder / tier.server_role / "defaults" / "main.yml" for folder in role_folders
                     if (folder / tier.server_role / "defaults" / "main.yml").is_file()), None)
    named = defaults.read_text() if defaults else ""
    problems += [f"{tier.name}: {tier.server_role}'s defaults do not set {key}" for key in tier.group_settings
                 if f"\n{key}:" not in f"\n{named}"]
    if not (isinstance(tier.fleet, type) and issubclass(tier.fleet, Fleet)):
        problems.append(f"{tier.name}: fleet {tier.fleet!r} is not a Fleet")
    problems += [f"{tier.name}: no failover action {name}" for name in _ACTIONS
                 if not callable(getattr(tier.actions, name, None))]
    problems += [f"{tier.name}: backups engine lacks {name}" for name in _BACKUP_MEMBERS
                 if not hasattr(tier.backups, name)]
    if not callable(tier.budget):
        problems.append(f"{tier.name}: budget is not a function")
    return problems
