"""The database topology after failovers: which db host is the primary and which are fenced.

Kept in ``inventory/ENV.topology.yml`` beside the inventory (written by ``inv failover``; the sandbox's is
removed with its hosts). When present it re-deals the hosts of the primary, replica and fenced groups, so every
role (PostgreSQL, the replica clone, PgBouncer's rw entry, backups on the primary) follows the new primary and a
later ``inv deploy`` never demotes or re-clones it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fabstack.engine.errors import FabstackError
from fabstack.engine.inventory import Group, Inventory
from fabstack.engine.yamlfile import load_mapping


@dataclass(frozen=True)
class DbGroups:
    """The inventory groups of the primary, the replicas and the fenced db hosts."""

    primary: str
    replica: str
    fenced: str

    @classmethod
    def from_values(cls, values: dict[str, Any], settings: tuple[str, str, str]) -> DbGroups:
        """A tier's names as env-wide values give them, ``settings`` naming the primary's, the replicas' and the
        fenced hosts' group (empty when no role defines them: no such tier)."""
        primary, replica, fenced = (str(values.get(key, "")) for key in settings)
        return cls(primary, replica, fenced)

    def all(self) -> tuple[str, str, str]:
        """The three names."""
        return self.primary, self.replica, self.fenced


@dataclass
class Topology:
    """The recorded primary and fenced hosts (empty when no failover has happened)."""

    primary: str = ""
    fenced: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The file's content."""
        return {"primary": self.primary, "fenced": list(self.fenced)}


def topology_path(inventory_path: Path) -> Path:
    """``inventory/ENV.topology.yml`` for ``inventory/ENV.yml``."""
    return inventory_path.with_suffix(".topology.yml")


def recorded(path: Path) -> dict[str, Any]:
    """Tier -> its recorded mapping (a file with ``primary:`` at the top is PostgreSQL's, as first written)."""
    if not path.is_file():
        return {}
    data = load_mapping(path)
    if "primary" in data or "fenced" in data:
        data = {"postgresql": data}
    return data


def load_topology(inventory_path: Path, tier: str = "postgresql") -> Topology:
    """A tier's recorded topology, or an empty one."""
    path = topology_path(inventory_path)
    data = recorded(path).get(tier) or {}
    fenced = data.get("fenced") or [] if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("primary", ""), str) or not isinstance(fenced, list):
        raise FabstackError("expected primary: HOST and fenced: [HOSTS]", where=str(path), key=tier)
    return Topology(primary=data.get("primary") or "", fenced=[str(h) for h in fenced])


def save_topology(inventory_path: Path, topology: Topology, tier: str = "postgresql") -> None:
    """Record a tier's topology atomically (the other tiers' stay as they are)."""
    path = topology_path(inventory_path)
    data = {**recorded(path), tier: topology.as_dict()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# written by fabstack failover: each db tier's current primary and fenced hosts; deploy follows "
                   "it\n" + yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)


def apply_topology(inv: Inventory, topology: Topology, db: DbGroups) -> None:
    """Re-deal the db hosts between the primary, replica and fenced groups as the topology says."""
    if not topology.primary and not topology.fenced:
        return
    groups = inv.groups
    if db.primary not in groups or db.replica not in groups:
        return
    members = [h for h in inv.hosts if set(db.all()) & set(inv.hosts[h].groups)]
    for name in [topology.primary, *topology.fenced]:
        if name and name not in members:
            raise FabstackError(f"{name} is not a db host of this inventory", where=str(topology_path(inv.path)),
                                key="primary" if name == topology.primary else "fenced")
    if db.fenced not in groups and topology.fenced:
        fenced = Group(db.fenced, parents=set(groups[db.primary].parents))
        groups[db.fenced] = fenced
        for parent in fenced.parents:
            groups[parent].children.append(db.fenced)
        fenced.depth = groups[db.primary].depth
    primary = topology.primary or next((h for h in groups[db.primary].hosts if h not in topology.fenced), "")
    for name in members:
        role = db.primary if name == primary else db.fenced if name in topology.fenced else db.replica
        host = inv.hosts[name]
        host.groups = [g for g in host.groups if g not in db.all()] + [role]
    for group in db.all():
        if group in groups:
            groups[group].hosts = [h for h in members if group in inv.hosts[h].groups]
