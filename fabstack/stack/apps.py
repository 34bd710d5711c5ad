"""A team's apps as data: the ``apps:`` list of group_vars/all.yml, read and checked before any host is touched.

Each entry names the app, its runtime (fabstack.stack.runtimes), where its code comes from (a git repository and a ref,
or a local folder), the groups that serve it behind the load balancer and the groups that run its workers, what
persists across releases, the hooks around activation, the health check and how many releases to keep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.project import Project
from fabstack.engine.yamlfile import load_vars_location
from fabstack.stack.runtimes import RUNTIMES, Runtime

# The env-wide setting that declares the apps (no role owns it).
APPS_KEY = "apps"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# A path inside a release: relative, no "..", no oddities a shell or tar would read differently.
_RELATIVE = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._/-]{1,200}$")
_ABSOLUTE = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")
_PROGRAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEYS = {"name", "runtime", "source", "serve", "workers", "worker_programs", "dest", "port", "shared_dirs",
        "shared_files", "writable", "hooks", "health", "keep", "user", "static",
        "composer_plugins", "entry", "command", "processes"}
# fabstack's own files in a release (what its processes start from, read by root): never the app's to write
_OURS = ".fabstack"
HOOK_STAGES = ("before_activate", "after_activate")


@dataclass(frozen=True)
class Hook:
    """A shell command run in the new release's folder; ``once`` runs it on one host per release only."""

    run: str
    once: bool = False


@dataclass(frozen=True)
class Source:
    """Where the code comes from: ``git`` (a URL or path) and ``ref``, or a local ``path`` for development."""

    git: str = ""
    ref: str = ""
    path: str = ""


@dataclass(frozen=True)
class App:
    """One declared app, every value checked."""

    name: str
    runtime: Runtime
    source: Source
    serve: tuple[str, ...]
    workers: tuple[str, ...]
    worker_programs: tuple[str, ...]
    dest: str
    port: int
    shared_dirs: tuple[str, ...]
    shared_files: tuple[str, ...]
    writable: tuple[str, ...]
    hooks: dict[str, tuple[Hook, ...]] = field(default_factory=dict)
    health_path: str = "/health"
    health_expect: str = ""
    keep: int = 5
    user: str = "www-data"
    # a URL prefix the host's nginx serves from a folder of the release, with long cache headers
    static_url: str = ""
    static_dir: str = ""
    # composer plugins are the app's dependencies' code: they run at build time only when the app asks
    composer_plugins: bool = False
    # the app's own entry point where its runtime takes one (ASGI: module:attr; Node: a file), and a
    # Procfile-style command that starts its server instead (run by sh in the live release, with $PORT)
    entry: str = ""
    command: str = ""
    # the app's server processes on each host (uvicorn workers, Node.js instances); 0: its role's setting
    processes: int = 0

    @property
    def releases_dir(self) -> str:
        """Where the releases are unpacked, one folder per revision."""
        return f"{self.dest}/releases"

    @property
    def current(self) -> str:
        """The link to the live release."""
        return f"{self.dest}/current"

    @property
    def shared_dir(self) -> str:
        """What persists across releases."""
        return f"{self.dest}/shared"

    @property
    def upstream(self) -> str:
        """The name of the load balancer's upstream that routes to this app."""
        return f"app_{self.name.replace('-', '_')}"


def _fail(message: str, where: str, key: str, host: str = "") -> FabstackError:
    return FabstackError(message, where=where, key=key, host=host)


def _strings(value: Any, pattern: re.Pattern[str], where: str, key: str, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and pattern.match(v) for v in value):
        raise _fail(f"must be a list of {what}, got {shorten(repr(value))}", where, key)
    return tuple(value)


def _source(value: Any, where: str, key: str) -> Source:
    if not isinstance(value, dict) or set(value) - {"git", "ref", "path"}:
        raise _fail(f"must be a mapping with git and ref, or path, got {shorten(repr(value))}", where, key)
    git, ref, path = (value.get(k, "") for k in ("git", "ref", "path"))
    if not all(isinstance(v, str) for v in (git, ref, path)) or bool(git) == bool(path):
        raise _fail("give either git (with ref) or path, as strings", where, key)
    if ref and (ref.startswith("-") or not re.match(r"^[A-Za-z0-9._/@^~-]{1,200}$", ref)):
        raise _fail(f"ref must be a branch, tag or commit name, got {shorten(repr(ref))}", where, f"{key}.ref")
    if git.startswith("-") or "\n" in git:
        raise _fail(f"not a repository address: {shorten(repr(git))}", where, f"{key}.git")
    return Source(git=git, ref=ref or ("main" if git else ""), path=path)


def _hooks(value: Any, where: str, key: str) -> dict[str, tuple[Hook, ...]]:
    if not isinstance(value, dict) or set(value) - set(HOOK_STAGES):
        raise _fail(f"must be a mapping of {' / '.join(HOOK_STAGES)} to lists, got {shorten(repr(value))}",
                    where, key)
    hooks: dict[str, tuple[Hook, ...]] = {}
    for stage, items in value.items():
        found = []
        for index, item in enumerate(items if isinstance(items, list) else [None]):
            if not (isinstance(item, dict) and isinstance(item.get("run"), str) and item["run"].strip()
                    and set(item) <= {"run", "once"} and isinstance(item.get("once", False), bool)):
                raise _fail(f"each hook is {{run: COMMAND, once: BOOLEAN}}, got {shorten(repr(item))}", where,
                            f"{key}.{stage}[{index}]")
            found.append(Hook(item["run"], item.get("once", False)))
        hooks[stage] = tuple(found)
    return hooks


def parse_app(entry: Any, index: int, where: str, groups: set[str] | None) -> App:
    """One ``apps:`` entry as an App; a wrong value raises naming the file and ``apps[INDEX].KEY``."""
    key = f"{APPS_KEY}[{index}]"
    if not isinstance(entry, dict):
        raise _fail(f"each app is a mapping, got {shorten(repr(entry))}", where, key)
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise _fail(f"unknown key {shorten(unknown[0])} (known: {', '.join(sorted(KEYS))})", where, key)
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(f"needs a name of lower-case letters, digits, - and _, got {shorten(repr(name))}", where,
                    f"{key}.name")
    key = f"{APPS_KEY}[{name}]"
    runtime = RUNTIMES.get(entry.get("runtime"))  # type: ignore[arg-type]
    if runtime is None:
        raise _fail(f"runtime must be one of {', '.join(RUNTIMES)}, got {shorten(repr(entry.get('runtime')))}",
                    where, f"{key}.runtime")
    serve = _strings(entry.get("serve", []), _NAME_OR_GROUP, where, f"{key}.serve", "group names")
    workers = _strings(entry.get("workers", []), _NAME_OR_GROUP, where, f"{key}.workers", "group names")
    for group in serve + workers:
        if groups is not None and group not in groups:
            raise _fail(f"names unknown group {shorten(group)}", where, f"{key}.serve/workers")
    if not serve and not workers:
        raise _fail("names no group to serve it or run its workers", where, f"{key}.serve")
    dest = entry.get("dest", f"/srv/{name}")
    if not isinstance(dest, str) or not _ABSOLUTE.match(dest) or ".." in dest.split("/") or dest.count("/") < 2:
        raise _fail(f"must be an absolute folder below /, got {shorten(repr(dest))}", where, f"{key}.dest")
    port = entry.get("port", 80)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise _fail(f"must be a port number 1-65535, got {shorten(repr(port))}", where, f"{key}.port")
    keep = entry.get("keep", 5)
    if not isinstance(keep, int) or isinstance(keep, bool) or not 2 <= keep <= 100:
        raise _fail(f"must be 2-100 (the live release and one to roll back to at least), got {keep!r}", where,
                    f"{key}.keep")
    health = entry.get("health", {})
    if not isinstance(health, dict) or set(health) - {"path", "expect"} or not all(
            isinstance(v, str) for v in health.values()) or not str(health.get("path", "/")).startswith("/"):
        raise _fail(f"must be {{path: /PATH, expect: TEXT}}, got {shorten(repr(health))}", where, f"{key}.health")
    static = entry.get("static", {})
    if not isinstance(static, dict) or set(static) != ({"url", "dir"} if static else set()) or (static and not (
            isinstance(static["url"], str) and _ABSOLUTE.match(static["url"]) and static["url"].endswith("/")
            and isinstance(static["dir"], str) and _RELATIVE.match(static["dir"]))):
        raise _fail(f"must be {{url: /PREFIX/, dir: FOLDER}} (a folder of the release), got {shorten(repr(static))}",
                    where, f"{key}.static")
    user = entry.get("user", "www-data")
    if not isinstance(user, str) or not _PROGRAM.match(user):
        raise _fail(f"must be a user name, got {shorten(repr(user))}", where, f"{key}.user")
    plugins = entry.get("composer_plugins", False)
    if not isinstance(plugins, bool):
        raise _fail(f"must be true or false, got {shorten(repr(plugins))}", where, f"{key}.composer_plugins")
    start, command = _entry(runtime, entry, where, key), _command(runtime, entry, where, key)
    processes = entry.get("processes", 0)
    if not isinstance(processes, int) or isinstance(processes, bool) or not 0 <= processes <= 256:
        raise _fail(f"must be 0-256 (0: the runtime role's setting), got {shorten(repr(processes))}", where,
                    f"{key}.processes")
    shared = {k: _strings(entry.get(k, []), _RELATIVE, where, f"{key}.{k}", "relative paths")
              for k in ("shared_dirs", "shared_files", "writable")}
    for name_of, paths in shared.items():
        ours = next((p for p in paths if p == _OURS or p.startswith(_OURS + "/")), None)
        if ours:
            raise _fail(f"{ours}: {_OURS}/ holds fabstack's own files of a release", where, f"{key}.{name_of}")
    return App(
        name=name, runtime=runtime, source=_source(entry.get("source"), where, f"{key}.source"),
        serve=serve, workers=workers,
        worker_programs=_strings(entry.get("worker_programs", []), _PROGRAM, where, f"{key}.worker_programs",
                                 "supervisor program names"),
        dest=dest.rstrip("/"), port=port,
        shared_dirs=shared["shared_dirs"], shared_files=shared["shared_files"], writable=shared["writable"],
        hooks=_hooks(entry.get("hooks", {}), where, f"{key}.hooks"),
        health_path=health.get("path", "/health"), health_expect=health.get("expect", ""), keep=keep, user=user,
        static_url=static.get("url", ""), static_dir=static.get("dir", "").rstrip("/"), composer_plugins=plugins,
        entry=start, command=command, processes=processes,
    )


def _entry(runtime: Runtime, entry: dict[str, Any], where: str, key: str) -> str:
    """The app's entry point as its runtime takes it (the runtime's default when not given)."""
    if "entry" not in entry:
        return runtime.entry_default
    value = entry["entry"]
    if runtime.entry_pattern is None:
        raise _fail(f"runtime {runtime.name} takes no entry", where, f"{key}.entry")
    if not isinstance(value, str) or not runtime.entry_pattern.match(value):
        raise _fail(f"must be {runtime.entry_means}, got {shorten(repr(value))}", where, f"{key}.entry")
    return value


# A command line for sh: one line, printable, no NUL (systemd's own specials are escaped where it is written).
_COMMAND = re.compile(r"^[^\x00-\x1f\x7f]{1,1000}$")


def _command(runtime: Runtime, entry: dict[str, Any], where: str, key: str) -> str:
    """The app's Procfile-style command (empty: the runtime starts the app its own way)."""
    if "command" not in entry:
        return ""
    value = entry["command"]
    if not runtime.takes_command:
        raise _fail(f"runtime {runtime.name} starts the app its own way: no command", where, f"{key}.command")
    if not isinstance(value, str) or not value.strip() or not _COMMAND.match(value):
        raise _fail(f"must be one command line, got {shorten(repr(value))}", where, f"{key}.command")
    return value.strip()


_NAME_OR_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def parse_apps(value: Any, where: str, groups: set[str] | None) -> list[App]:
    """Every ``apps:`` entry checked (group names too, unless ``groups`` is None): names and dests unique."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"must be a list of apps, got {shorten(repr(value))}", where, APPS_KEY)
    apps = [parse_app(entry, index, where, groups) for index, entry in enumerate(value)]
    seen: dict[str, str] = {}
    for app in apps:
        for what, fact in (("name", app.name), ("dest", app.dest)):
            if f"{what} {fact}" in seen:
                raise _fail(f"{what} {fact} is also app {seen[f'{what} {fact}']}'s", where, f"{APPS_KEY}[{app.name}]")
            seen[f"{what} {fact}"] = app.name
    return apps


def served_here(values: dict[str, Any], runtime: str | None = None) -> list[App]:
    """The apps a host serves (one of its ``group_names`` is among the app's ``serve``), of one runtime if given."""
    mine = set(values.get("group_names") or [])
    return [app for app in parse_apps(values.get(APPS_KEY), APPS_KEY, None)
            if mine & set(app.serve) and runtime in (None, app.runtime.name)]


def env_apps(project: Project) -> list[App]:
    """The env's apps (``apps:`` in group_vars/all or the inventory's all vars), every entry checked, and no two
    apps of one host on one port."""
    values, files = load_vars_location(project.root / "group_vars", "all")
    where = files[-1] if APPS_KEY in values and files else str(project.inventory.path)
    all_vars = project.inventory.groups["all"].vars
    value = project.overrides.get(APPS_KEY, values.get(APPS_KEY, all_vars.get(APPS_KEY)))
    apps = parse_apps(value, where, set(project.inventory.groups) | project.inventory.elsewhere)
    taken: dict[tuple[str, int], str] = {}
    for app in apps:
        for host in dict.fromkeys(h for group in app.serve for h in project.inventory.select(group)):
            other = taken.setdefault((host, app.port), app.name)
            if other != app.name:
                raise FabstackError(f"port {app.port} is also app {other}'s on this host", where=where,
                                    key=f"{APPS_KEY}[{app.name}].port", host=host)
    return apps


def chosen_apps(project: Project, name: str | None) -> list[App]:
    """The app called ``name`` (all apps when None); an unknown name is refused with the known ones."""
    apps = env_apps(project)
    if name is None:
        return apps
    chosen = [a for a in apps if a.name == name]
    if not chosen:
        known = ", ".join(a.name for a in apps) or "none declared"
        raise FabstackError(f"no app {shorten(repr(name))} (apps: {known})", key="--app")
    return chosen
