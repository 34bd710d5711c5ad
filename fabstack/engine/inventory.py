"""Ansible-style YAML inventories: groups, hosts and variables resolved in Ansible's order."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.yamlfile import check_variable_names, load_vars_location, load_yaml

_GROUP_KEYS = {"hosts", "vars", "children"}
# Variables the inventory itself gives every host (as Ansible's magic variables), and the one it reads of a group.
INVENTORY_VARIABLES = ("inventory_hostname", "group_names", "ansible_group_priority")
# Host and group names: they name files in host_vars/ and group_vars/, so never "..", a leading dot or dash.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
# An env is a plain name: it becomes file names under inventory/ and .fabstack/, so never a path.
_ENV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass
class Group:
    """One inventory group: its own variables, hosts and child groups."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)
    depth: int = 0
    priority: int = 1


@dataclass
class Host:
    """One inventory host with the variables the inventory file gives it directly."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)


@dataclass
class ResolvedVars:
    """A host's variables after precedence, with the place each one came from."""

    host: str
    values: dict[str, Any]
    origins: dict[str, str]

    def origin(self, key: str) -> str:
        """The file (or layer) that set ``key`` last."""
        return self.origins.get(key, "")


@dataclass
class Inventory:
    """An environment's inventory file plus the group_vars/ and host_vars/ beside it."""

    env: str
    path: Path
    root: Path
    groups: dict[str, Group]
    hosts: dict[str, Host]
    # groups that other envs of the same repo declare and this one does not (a tier this env does not run): a
    # pattern naming one matches no host here instead of being refused as a typo
    elsewhere: set[str] = field(default_factory=set)

    def host_groups(self, host: str) -> list[Group]:
        """Every group the host belongs to, ancestors included, in Ansible's order (depth, priority, name)."""
        seen: set[str] = set()
        stack = list(self.hosts[host].groups)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(self.groups[name].parents)
        seen.add("all")
        return sorted((self.groups[n] for n in seen), key=lambda g: (g.depth, g.priority, g.name))

    def group_names(self, host: str) -> list[str]:
        """Names of the host's groups other than ``all``, sorted by name as Ansible's group_names is."""
        return sorted(g.name for g in self.host_groups(host) if g.name != "all")

    def resolve(
        self,
        host: str,
        role_defaults: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        defaults_origin: str = "role defaults",
    ) -> ResolvedVars:
        """Resolve a host's variables, lowest precedence first, as ``ansible-inventory --list`` does.

        Layers: role defaults; inventory vars of ``all``; inventory vars of the other groups; group_vars/all;
        group_vars/<group>; inventory host vars; host_vars/<host>; ``--set`` overrides. Top-level keys are
        replaced, never deep-merged (Ansible's default ``hash_behaviour``).
        """
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}

        def layer(data: dict[str, Any], origin: str) -> None:
            for key, value in data.items():
                values[key] = value
                origins[key] = origin

        layer(role_defaults or {}, defaults_origin)
        groups = self.host_groups(host)
        inv = str(self.path)
        layer(self.groups["all"].vars, inv)
        for group in groups:
            if group.name != "all":
                layer(group.vars, inv)
        for group in groups:
            data, sources = load_vars_location(self.root / "group_vars", group.name)
            layer(data, sources[-1] if sources else "")
        layer(self.hosts[host].vars, inv)
        data, sources = load_vars_location(self.root / "host_vars", host)
        layer(data, sources[-1] if sources else "")
        layer(overrides or {}, "--set")
        values.setdefault("inventory_hostname", host)
        values["group_names"] = self.group_names(host)
        return ResolvedVars(host=host, values=values, origins=origins)

    def select(self, limit: str | None) -> list[str]:
        """Host names matched by an Ansible-style pattern (``web,db1``, ``app*``, ``!db2``, ``&lb``).

        An exact name that is neither a host nor a group is an error, so a typo never selects nothing silently.
        """
        everything = list(self.hosts)
        if not limit:
            return everything
        selected: list[str] = []
        terms = [t.strip() for t in re.split(r"[,:]", limit) if t.strip()]
        positives = [t for t in terms if t[0] not in "!&"]
        for term in positives:
            for name in self._match(term):
                if name not in selected:
                    selected.append(name)
        if not positives:
            selected = everything
        for term in terms:
            if term.startswith("&"):
                keep = set(self._match(term[1:]))
                selected = [h for h in selected if h in keep]
            elif term.startswith("!"):
                drop = set(self._match(term[1:]))
                selected = [h for h in selected if h not in drop]
        return selected

    def select_limit(self, limit: str | None) -> list[str]:
        """The hosts a ``--limit`` selects (every host when it is not given). A limit that is empty, only
        separators, or that selects no host is an error: never a silent success, never every host."""
        if limit is None:
            return list(self.hosts)
        if not [t for t in re.split(r"[,:]", limit) if t.strip()]:
            raise FabstackError(f"names no host or group: {shorten(repr(limit))}", key="--limit")
        selected = self.select(limit)
        if not selected:
            raise FabstackError(f"{shorten(limit)} selects no host", where=str(self.path), key="--limit")
        return selected

    def _match(self, term: str) -> list[str]:
        if term in self.groups:
            return self._group_hosts(term)
        if term in self.elsewhere:
            return []
        if term in self.hosts:
            return [term]
        if any(ch in term for ch in "*?["):
            found: list[str] = []
            for name in self.groups:
                if fnmatch.fnmatchcase(name, term):
                    found.extend(h for h in self._group_hosts(name) if h not in found)
            found.extend(h for h in self.hosts if fnmatch.fnmatchcase(h, term) and h not in found)
            if found:
                return found
        raise FabstackError(f"unknown host or group {term!r}", where=str(self.path), key="--limit")

    def _group_hosts(self, name: str) -> list[str]:
        if name == "all":
            return list(self.hosts)
        found: list[str] = []
        stack = [name]
        seen: set[str] = set()
        while stack:
            group = self.groups[stack.pop(0)]
            if group.name in seen:
                continue
            seen.add(group.name)
            found.extend(h for h in group.hosts if h not in found)
            stack.extend(group.children)
        return [h for h in self.hosts if h in found]

    def as_ansible_list(self) -> dict[str, Any]:
        """The structure ``ansible-inventory --list`` prints, with every host's resolved variables."""
        out: dict[str, Any] = {"_meta": {"hostvars": {}}}
        for host in self.hosts:
            resolved = dict(self.resolve(host).values)
            resolved.pop("inventory_hostname", None)
            resolved.pop("group_names", None)
            out["_meta"]["hostvars"][host] = resolved
        for name, group in self.groups.items():
            entry: dict[str, Any] = {}
            if group.children:
                entry["children"] = list(group.children)
            if group.hosts and name != "all":
                entry["hosts"] = list(group.hosts)
            if entry:
                out[name] = entry
        return out


def inventory_path(root: Path, env: str) -> Path:
    """The inventory file of ``env`` under ``root``; an unknown env names the ones that exist."""
    folder = root / "inventory"
    if not _ENV.match(env):
        raise FabstackError(f"an env is a plain name (letters, digits, - and _), got {shorten(repr(env))}",
                            key="--env")
    for suffix in (".yml", ".yaml"):
        candidate = folder / f"{env}{suffix}"
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in folder.glob("*.y*ml")) if folder.is_dir() else []
    listed = ", ".join(known) or "none"
    raise FabstackError(f"unknown env {env!r} (inventories here: {listed})", where=str(folder), key="--env")


def host_entry(address: str, port: int) -> str:
    """How known_hosts names a host: the address, or ``[address]:port`` off port 22."""
    return address if port == 22 else f"[{address}]:{port}"


def known_hosts_path(inv: Inventory) -> Path:
    """The known_hosts file kept beside an env's inventory (``inventory/ENV.known_hosts``)."""
    return inv.path.with_suffix(".known_hosts")


def group_names_in(path: Path) -> set[str]:
    """Every group an inventory file declares (an unreadable file declares none: it is its own env's business)."""
    try:
        data = load_yaml(path)
    except FabstackError:
        return set()
    found: set[str] = set()

    def walk(groups: Any) -> None:
        for name, body in (groups or {}).items() if isinstance(groups, dict) else ():
            found.add(str(name))
            if isinstance(body, dict):
                walk(body.get("children"))

    walk(data)
    return found


def env_names(inventory_dir: Path) -> list[str]:
    """The envs of a repo: each ``inventory/ENV.yml`` (a failover's ``ENV.topology.yml`` is not one)."""
    return sorted(path.stem for path in inventory_dir.glob("*.yml") if not path.name.endswith(".topology.yml"))


def groups_of_other_envs(inv: Inventory) -> set[str]:
    """The groups the repo's other inventories declare and this one does not."""
    others: set[str] = set()
    for env in env_names(inv.path.parent):
        if env != inv.env:
            others |= group_names_in(inv.path.parent / f"{env}.yml")
    return others - set(inv.groups)


def load_inventory(root: Path, env: str) -> Inventory:
    """Parse ``inventory/ENV.yml`` under ``root`` into groups and hosts, computing depths as Ansible does (the
    failover topology is applied by ``load_project``: the inventory file alone is what this returns)."""
    path = inventory_path(root, env)
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FabstackError("an inventory must be a mapping of groups (all: ...)", where=str(path))
    inv = Inventory(env=env, path=path, root=root, groups={"all": Group("all")}, hosts={})
    for name, body in data.items():
        _parse_group(inv, str(name), body, parent=None)
    _add_ungrouped(inv)
    _compute_depths(inv)
    if not inv.hosts:
        raise FabstackError("the inventory lists no hosts", where=str(path))
    inv.elsewhere = groups_of_other_envs(inv)
    return inv


def _parse_group(inv: Inventory, name: str, body: Any, parent: str | None) -> None:
    where = str(inv.path)
    if not _NAME.match(name):
        raise FabstackError(f"invalid group name {name!r}", where=where, key=name)
    if parent == name:
        raise FabstackError("a group cannot be its own child", where=where, key=f"{name}.children")
    group = inv.groups.setdefault(name, Group(name))
    if parent is not None:
        group.parents.add(parent)
        if name not in inv.groups[parent].children:
            inv.groups[parent].children.append(name)
    elif parent is None and name != "all":
        group.parents.add("all")
        if name not in inv.groups["all"].children:
            inv.groups["all"].children.append(name)
    if body is None:
        return
    if not isinstance(body, dict):
        raise FabstackError("a group must be a mapping with hosts, vars or children", where=where, key=name)
    unknown = set(body) - _GROUP_KEYS
    if unknown:
        raise FabstackError(
            f"unknown keys {sorted(unknown)} in group (allowed: hosts, vars, children)", where=where, key=name
        )
    group_vars = body.get("vars") or {}
    if not isinstance(group_vars, dict):
        raise FabstackError("vars must be a mapping", where=where, key=f"{name}.vars")
    check_variable_names(group_vars, where, f"{name}.vars")
    group.vars.update({k: v for k, v in group_vars.items() if k != "ansible_group_priority"})
    if "ansible_group_priority" in group_vars:
        try:
            group.priority = int(group_vars["ansible_group_priority"])
        except (TypeError, ValueError) as exc:
            raise FabstackError("must be an integer", where=where, key=f"{name}.vars.ansible_group_priority") from exc
    hosts = body.get("hosts") or {}
    if not isinstance(hosts, dict):
        raise FabstackError("hosts must be a mapping of host names", where=where, key=f"{name}.hosts")
    for host_name, host_vars in hosts.items():
        host_name = str(host_name)
        if not _NAME.match(host_name):
            raise FabstackError(f"invalid host name {host_name!r}", where=where, key=f"{name}.hosts")
        if host_vars is not None and not isinstance(host_vars, dict):
            raise FabstackError("host variables must be a mapping", where=where, key=f"{name}.hosts.{host_name}")
        check_variable_names(host_vars or {}, where, f"{name}.hosts.{host_name}")
        host = inv.hosts.setdefault(host_name, Host(host_name))
        host.vars.update(host_vars or {})
        if name != "all" and name not in host.groups:
            host.groups.append(name)
        if host_name not in group.hosts:
            group.hosts.append(host_name)
    children = body.get("children") or {}
    if not isinstance(children, dict):
        raise FabstackError("children must be a mapping of groups", where=where, key=f"{name}.children")
    for child, child_body in children.items():
        _parse_group(inv, str(child), child_body, parent=name)


def _add_ungrouped(inv: Inventory) -> None:
    ungrouped = inv.groups.setdefault("ungrouped", Group("ungrouped"))
    ungrouped.parents.add("all")
    if "ungrouped" not in inv.groups["all"].children:
        inv.groups["all"].children.insert(0, "ungrouped")
    for host in inv.hosts.values():
        if not host.groups:
            host.groups.append("ungrouped")
            if host.name not in ungrouped.hosts:
                ungrouped.hosts.append(host.name)
    inv.groups["all"].hosts = []


def _compute_depths(inv: Inventory) -> None:
    """Depth is the longest path from ``all``, as Ansible's Group.add_child_group keeps it."""

    def visit(name: str, depth: int, path: tuple[str, ...]) -> None:
        if name in path:
            raise FabstackError(f"group cycle: {' -> '.join(path + (name,))}", where=str(inv.path), key=name)
        group = inv.groups[name]
        group.depth = max(group.depth, depth)
        for child in group.children:
            visit(child, depth + 1, path + (name,))

    visit("all", 0, ())
