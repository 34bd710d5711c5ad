"""A deployment repo: inventory, group_vars, host_vars, site.yml (which roles go where) and roles/."""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fabstack.engine import vault
from fabstack.engine.bundled import ENGINE_ROOT
from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.inventory import Inventory, ResolvedVars, load_inventory
from fabstack.engine.masking import Masker, secret_values
from fabstack.engine.role import Role, load_role
from fabstack.engine.secrets import generated_secrets, secrets_path
from fabstack.engine.varstemplate import template_vars
from fabstack.engine.yamlfile import load_vars_location, load_yaml

# Settings the engine itself reads for every host (the connection, fact overrides, apt's cache age).
ENGINE_SETTINGS = ("ansible_host", "ansible_port", "ansible_user", "ansible_become", "ansible_become_password",
                   "ansible_ssh_private_key_file", "ansible_python_interpreter", "fabstack_facts",
                   "apt_cache_valid_time")


@dataclass
class HostSetup:
    """Everything known about a host before touching it: its roles and resolved, type-checked variables."""

    name: str
    roles: list[Role]
    resolved: ResolvedVars

    @property
    def vars(self) -> dict[str, Any]:
        """The host's variables."""
        return self.resolved.values


class PlanProblem(Protocol):
    """One reason a whole-env plan does not fit (a budget line), named like an input error."""

    message: str
    key: str
    host: str
    where: str


class Plan(Protocol):
    """What the engine reads of a whole-env plan: each host's computed values, and what does not fit."""

    @property
    def problems(self) -> Sequence[PlanProblem]:
        """What does not fit, each named like an input error."""
        ...

    def of(self, host: str) -> dict[str, Any]:
        """The values computed for one host (an empty mapping if none)."""
        ...


class NoPlan:
    """The plan of an env the engine loads alone: nothing computed, nothing refused."""

    @property
    def problems(self) -> Sequence[PlanProblem]:
        """Nothing is refused."""
        return ()

    def of(self, host: str) -> dict[str, Any]:
        """Nothing is computed for any host."""
        return {}


@dataclass(frozen=True)
class EnvRules:
    """What the layers above the engine know of a whole env, handed over when it is loaded (``fabstack.tiers.env``
    gives the stack's and the tiers'): the engine calls them and never imports those layers."""

    # env-wide settings no role's defaults name (the env's apps)
    settings: tuple[str, ...] = ()
    # re-deal hosts between groups once the inventory is read (the db tiers' recorded primaries)
    regroup: Callable[[Project], None] = lambda project: None
    # whole-env input checks that need several hosts at once, before any host is touched
    check: Callable[[Project, dict[str, HostSetup]], None] = lambda project, setups: None
    # the whole-env plan (connection and memory budget) from every host's setup and the facts known so far
    plan: Callable[[Project, dict[str, HostSetup], dict[str, dict[str, Any]]], Plan] = (
        lambda project, setups, hostfacts: NoPlan())


@dataclass
class Project:
    """A loaded deployment repo for one env."""

    root: Path
    inventory: Inventory
    plays: list[tuple[str, list[str]]]
    rules: EnvRules = field(default_factory=EnvRules)
    roles: dict[str, Role] = field(default_factory=dict)
    masker: Masker = field(default_factory=Masker)
    overrides: dict[str, Any] = field(default_factory=dict)
    # each host's variables are worked out once per command (``resolved``): every later reader (its own setup,
    # another host's {{ hostvars[...] }}, the whole-env checks, a release, verify) takes them from here;
    # ``resolves`` counts how often each host was actually worked out (1 in a command; shown with -v)
    _resolved: dict[str, ResolvedVars] = field(default_factory=dict)
    _setups: dict[str, HostSetup] = field(default_factory=dict)
    resolves: dict[str, int] = field(default_factory=dict)
    # hosts are planned in threads: each thread has its own chain of hosts being templated, and a host is
    # worked out under a lock (two threads asking for one host at once is not a cycle, and it is done once)
    _local: threading.local = field(default_factory=threading.local)
    _resolve_lock: threading.RLock = field(default_factory=threading.RLock)

    def env_values(self) -> dict[str, Any]:
        """Settings that hold for the whole env: every role's defaults, the inventory's ``all`` vars and
        group_vars/all (what group names and other env-wide choices are read from)."""
        values: dict[str, Any] = {}
        for role in self.roles.values():
            values.update(role.defaults)
        values.update(self.inventory.groups["all"].vars)
        values.update(load_vars_location(self.root / "group_vars", "all")[0])
        return values

    def known_settings(self) -> set[str]:
        """Every setting name this env knows: the roles' defaults and generated secrets, the connection settings the
        engine reads, and whatever the inventory, group_vars and host_vars set for any host."""
        known = set(ENGINE_SETTINGS) | set(self.rules.settings) | set(self.env_values())
        known |= {name for role in self.roles.values() for name in role.generated_secrets}
        for host in self.inventory.hosts:
            known |= set(self.inventory.resolve(host).values)
        return known

    def set_overrides(self, pairs: list[str]) -> None:
        """Apply ``--set key=value`` pairs; a key nothing in the env knows (a typo) is refused."""
        self.use_overrides(parse_overrides(pairs))

    def use_overrides(self, overrides: dict[str, Any]) -> None:
        """Apply already-typed overrides (``--set``'s, parsed); a key nothing in the env knows is refused."""
        unknown = sorted(set(overrides) - self.known_settings())
        if unknown:
            near = difflib.get_close_matches(unknown[0], self.known_settings(), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise FabstackError(f"no role or inventory knows this setting{hint}", key=f"--set {shorten(unknown[0])}")
        self.overrides = dict(overrides)
        self.forget_resolved()

    def forget_resolved(self) -> None:
        """Drop every host's worked-out values (the overrides changed): the next reader works them out again."""
        with self._resolve_lock:
            self._resolved.clear()
            self._setups.clear()

    def groups(self) -> dict[str, list[str]]:
        """Group name -> its hosts (children's included), like Ansible's ``groups``; a group only other envs of
        the repo declare is here with no host."""
        return {**{name: [] for name in sorted(self.inventory.elsewhere)},
                **{name: self.inventory.select(name) for name in self.inventory.groups}}

    def hostvars(self) -> dict[str, dict[str, Any]]:
        """Every host's resolved variables (its roles' defaults included), like Ansible's ``hostvars``.

        Roles read another host's settings here (a PgBouncer's port, a primary's address), so a value set
        for that host's group reaches the hosts that connect to it.
        """
        return {h: self.resolve(h).values for h in self.inventory.hosts}

    @property
    def env(self) -> str:
        """The env's name (the inventory file's stem)."""
        return self.inventory.env

    def waves(self) -> list[list[str]]:
        """Roles grouped by the play that first names them: every host finishes a play before the next starts.

        Like Ansible's plays, this lets a replica clone a primary that the previous play configured.
        """
        seen: set[str] = set()
        waves = []
        for _, roles in self.plays:
            fresh = [r for r in roles if r not in seen]
            seen.update(fresh)
            if fresh:
                waves.append(fresh)
        return waves

    def roles_for(self, host: str, only: list[str] | None = None) -> list[Role]:
        """The roles site.yml assigns to a host, in play order, optionally narrowed by ``--roles``."""
        names: list[str] = []
        for pattern, roles in self.plays:
            if host in self.inventory.select(pattern):
                names.extend(r for r in roles if r not in names)
        if only:
            names = [n for n in names if n in only]
        return [self.roles[n] for n in names]

    def resolve(self, host: str) -> ResolvedVars:
        """A host's variables: its roles' defaults, generated secrets, the inventory layers and ``--set``; worked
        out once per command (and again only after the overrides change)."""
        with self._resolve_lock:
            if host not in self._resolved:
                self._resolved[host] = self._resolve(host)
                self.resolves[host] = self.resolves.get(host, 0) + 1
            return self._resolved[host]

    def _resolve(self, host: str) -> ResolvedVars:
        roles = self.roles_for(host)
        defaults: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for role in roles:
            defaults.update(role.defaults)
            origins.update({k: str(role.defaults_file) for k in role.defaults})
        wanted = {name for role in roles for name in role.generated_secrets}
        if wanted:
            generated = generated_secrets(self.root, self.env, wanted)
            self.masker.add(set(generated.values()) | secret_values(generated))
            defaults.update(generated)
            origins.update({k: str(secrets_path(self.root, self.env)) for k in generated})
        resolved = self.inventory.resolve(host, defaults, self.overrides)
        for key, origin in resolved.origins.items():
            if origin == "role defaults":
                resolved.origins[key] = origins.get(key, origin)
        resolved.values = self._templated(resolved, never=set(wanted))
        return resolved

    def _templated(self, resolved: ResolvedVars, never: set[str]) -> dict[str, Any]:
        """The host's values with ``{{ }}`` rendered (secrets never); ``hostvars`` in them resolves other hosts."""
        host = resolved.host
        templating: list[str] = self._local.__dict__.setdefault("templating", [])
        if host in templating:
            chain = " -> ".join([*templating[templating.index(host):], host])
            raise FabstackError(f"templated values refer to each other across hosts ({chain})", host=host)
        hidden = vault.revealed()
        never = never | {k for k, v in resolved.values.items() if isinstance(v, str) and v in hidden}
        templating.append(host)
        try:
            return template_vars(resolved.values, resolved.origins, host, hosts=list(self.inventory.hosts),
                                 hostvars_of=lambda other: self.resolve(other).values, groups=self.groups,
                                 never=never)
        finally:
            templating.pop()

    def setup(self, host: str, only_roles: list[str] | None) -> HostSetup:
        """Resolve and check a host's variables (role defaults lowest, ``--set`` highest); checked once per
        command, narrowed to ``only_roles`` for each caller."""
        with self._resolve_lock:
            if host not in self._setups:
                self._setups[host] = self._checked_setup(host)
            whole = self._setups[host]
        if only_roles:
            return HostSetup(name=host, roles=[r for r in whole.roles if r.name in only_roles],
                             resolved=whole.resolved)
        return whole

    def _checked_setup(self, host: str) -> HostSetup:
        roles = self.roles_for(host)
        names = {role.name for role in roles}
        for role in roles:
            missing = [need for need in role.needs if need not in names]
            if missing:
                raise FabstackError(f"role {role.name} needs role {missing[0]} on the same host (it reads its "
                                    "settings)", where=str(self.root / "site.yml"), key="roles", host=host)
        resolved = self.resolve(host)
        declared = {key for role in roles for key in role.secret_settings}
        secrets = secret_values(resolved.values, declared) | vault.revealed()
        self.masker.add(secrets)
        for role in roles:
            role.check_types(host, resolved.values, resolved.origins, secrets)
            role.handler_commands(resolved.values, host)  # a handler naming an unknown setting fails here
        return HostSetup(name=host, roles=roles, resolved=resolved)

    def role_paths(self) -> list[Path]:
        """Folders searched for roles: the repo's own roles/, then fabstack's bundled ones."""
        return [p for p in (self.root / "roles", ENGINE_ROOT / "roles") if p.is_dir()]


def _find_role(paths: list[Path], name: str, where: str, key: str) -> Role:
    for folder in paths:
        if (folder / name / "role.py").is_file():
            return load_role(folder, name)
    raise FabstackError(f"unknown role {name!r} (no roles/{name}/role.py)", where=where, key=key)


PLAY_KEYS = ("hosts", "roles", "name")


def load_site(root: Path, required: bool = True) -> list[tuple[str, list[str]]]:
    """Parse site.yml: a list of ``{hosts: PATTERN, roles: [NAME, ...]}`` plays, like an Ansible playbook. Without
    the file: an error when ``required``, else no plays (listing an inventory needs none, as ansible-inventory)."""
    path = root / "site.yml"
    if not path.exists() and not path.is_symlink():
        if not required:
            return []
        raise FabstackError("missing: it lists which roles go where (- hosts: PATTERN / roles: [...])",
                            where=str(path))
    data = load_yaml(path)
    if not isinstance(data, list):
        raise FabstackError("site.yml must be a list of plays (- hosts: PATTERN / roles: [...])", where=str(path))
    plays = []
    for index, play in enumerate(data):
        if not isinstance(play, dict) or not isinstance(play.get("hosts"), str):
            raise FabstackError("each play needs hosts: PATTERN", where=str(path), key=f"[{index}].hosts")
        unknown = sorted(str(k) for k in play if k not in PLAY_KEYS)
        if unknown:
            raise FabstackError(f"unknown play key (a play has {', '.join(PLAY_KEYS)})", where=str(path),
                                key=f"[{index}].{shorten(unknown[0])}")
        roles = play.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise FabstackError("roles must be a list of role names", where=str(path), key=f"[{index}].roles")
        plays.append((play["hosts"], roles))
    return plays


def load_project(root: Path, env: str, check_patterns: bool = True, rules: EnvRules | None = None) -> Project:
    """Load inventory, site.yml and every role they name; all local errors surface here, before any host.

    ``rules`` are what the layers above know of a whole env (``fabstack.tiers.env.load_env`` hands them in; its
    ``regroup`` runs here, once the roles are known). ``check_patterns`` off skips checking that site.yml's host
    patterns match this inventory (for listing any inventory).
    """
    root = root.resolve()
    inventory = load_inventory(root, env)
    plays = load_site(root, required=check_patterns)
    project = Project(root=root, inventory=inventory, plays=plays, rules=rules or EnvRules())
    site = str(root / "site.yml")
    for index, (pattern, names) in enumerate(plays):
        for name in names:
            if name not in project.roles:
                project.roles[name] = _find_role(project.role_paths(), name, site, f"[{index}].roles")
        try:
            if check_patterns:
                inventory.select(pattern)
        except FabstackError as exc:
            raise FabstackError(exc.message, where=site, key=f"[{index}].hosts") from exc
    project.rules.regroup(project)
    return project


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values are read as YAML scalars (``8`` is a number, ``true`` a boolean)."""
    import yaml

    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise FabstackError(f"expected key=value, got {pair!r}", key="--set")
        try:
            values[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            values[key] = raw
    return values
