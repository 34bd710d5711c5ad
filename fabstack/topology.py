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

from fabstack.errors import FabstackError
from fabstack.inventory import Group, Inventory, load_inventory
from fabstack.yamlfile import load_mapping

PRIMARY_GROUP = "db_primary"
REPLICA_GROUP = "db_replica"
FENCED_GROUP = "db_fenced"


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


def load_topology(inventory_path: Path) -> Topology:
    """The recorded topology, or an empty one."""
    path = topology_path(inventory_path)
    if not path.is_file():
        return Topology()
    data = load_mapping(path)
    fenced = data.get("fenced") or []
    if not isinstance(data.get("primary", ""), str) or not isinstance(fenced, list):
        raise FabstackError("expected primary: HOST and fenced: [HOSTS]", where=str(path))
    return Topology(primary=data.get("primary") or "", fenced=[str(h) for h in fenced])


def save_topology(inventory_path: Path, topology: Topology) -> None:
    """Write the topology atomically."""
    path = topology_path(inventory_path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("# written by fabstack failover: the current primary and fenced db hosts; deploy follows it\n"
                   + yaml.safe_dump(topology.as_dict(), sort_keys=False))
    tmp.replace(path)


def apply_topology(inv: Inventory, topology: Topology) -> None:
    """Re-deal the db hosts between the primary, replica and fenced groups as the topology says."""
    if not topology.primary and not topology.fenced:
        return
    groups = inv.groups
    if PRIMARY_GROUP not in groups or REPLICA_GROUP not in groups:
        return
    members = [h for h in inv.hosts if {PRIMARY_GROUP, REPLICA_GROUP, FENCED_GROUP} & set(inv.hosts[h].groups)]
    for name in [topology.primary, *topology.fenced]:
        if name and name not in members:
            raise FabstackError(f"{name} is not a db host of this inventory", where=str(topology_path(inv.path)),
                                key="primary" if name == topology.primary else "fenced")
    if FENCED_GROUP not in groups and topology.fenced:
        fenced = Group(FENCED_GROUP, parents=set(groups[PRIMARY_GROUP].parents))
        groups[FENCED_GROUP] = fenced
        for parent in fenced.parents:
            groups[parent].children.append(FENCED_GROUP)
        fenced.depth = groups[PRIMARY_GROUP].depth
    primary = topology.primary or next((h for h in groups[PRIMARY_GROUP].hosts if h not in topology.fenced), "")
    for name in members:
        role = PRIMARY_GROUP if name == primary else FENCED_GROUP if name in topology.fenced else REPLICA_GROUP
        host = inv.hosts[name]
        host.groups = [g for g in host.groups if g not in (PRIMARY_GROUP, REPLICA_GROUP, FENCED_GROUP)] + [role]
    for group in (PRIMARY_GROUP, REPLICA_GROUP, FENCED_GROUP):
        if group in groups:
            groups[group].hosts = [h for h in members if group in inv.hosts[h].groups]


def load_current_inventory(root: Path, env: str) -> Inventory:
    """The env's inventory with its db hosts dealt as the topology file says (who is primary after a failover)."""
    inv = load_inventory(root, env)
    apply_topology(inv, load_topology(inv.path))
    return inv
