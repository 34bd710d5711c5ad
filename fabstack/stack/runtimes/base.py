"""What every runtime is: its steps on the controller and on a host."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class AppLike(Protocol):
    """What a runtime reads of an app (fabstack.stack.apps.App)."""

    name: str
    dest: str
    user: str
    worker_programs: tuple[str, ...]
    health_path: str
    composer_plugins: bool
    entry: str
    command: str
    processes: int

    @property
    def current(self) -> str:  # noqa: D102
        ...


# How a host's nginx fronts an app's processes: FastCGI to a socket (PHP-FPM), or HTTP to loopback ports.
FASTCGI = "fastcgi"
PROXY = "proxy"


def no_ports(app: AppLike, values: dict[str, Any], index: int, cpus: int) -> list[int]:
    """A runtime whose processes listen on no TCP port (PHP-FPM's socket)."""
    return []


@dataclass(frozen=True)
class Runtime:
    """One kind of app: its build, its steps on a host (shell commands run as root), and its server side (how
    nginx fronts it, on which loopback ports, under which systemd unit, started how). docs/runtimes.md."""

    name: str
    # controller: turn the exported tree into what ships (dependencies installed, wheels built); may be a no-op
    build: Callable[[AppLike, Path], None]
    # host, in the unpacked release before the switch: make it runnable (caches, a virtualenv)
    prepare: Callable[[AppLike, str], str]
    # host, after the switch: the server picks up the new release without dropping a request
    reload: Callable[[AppLike], str]
    # one host of the workers, after every web host: workers finish their job and restart on the new code
    restart_workers: Callable[[AppLike], str]
    # the Debian packages a host running this runtime needs (installed by the app's roles)
    packages: tuple[str, ...] = ()
    # how the host's nginx fronts the app (FASTCGI or PROXY), and the loopback ports its processes listen on:
    # (the app, the host's values, the app's index among this runtime's apps on the host, its cores) -> ports
    front: str = PROXY
    ports: Callable[[AppLike, dict[str, Any], int, int], list[int]] = no_ports
    # the app's systemd unit (a template unit ends with "@"), or "" when the runtime runs under a shared server
    unit: Callable[[AppLike], str] = lambda app: ""
    # the app's own entry point: its grammar and the default (None: the runtime takes none), and whether a
    # Procfile-style ``command`` may replace how the server starts
    entry_pattern: re.Pattern[str] | None = None
    entry_default: str = ""
    entry_means: str = ""
    takes_command: bool = False


def _programs(app: AppLike) -> str:
    return " ".join(f"'{name}:*'" for name in app.worker_programs)


def supervisor_restart(app: AppLike) -> str:
    """Restart the app's Supervisor programs (each waits for its job to finish: stopwaitsecs), if any run here."""
    if not app.worker_programs:
        return "true"
    return f"if systemctl is-active -q supervisor; then supervisorctl restart {_programs(app)} >/dev/null; fi"


def supervisor_start(app: AppLike) -> str:
    """Start the app's Supervisor programs that are not running (those that gave up before the first release),
    then check that every one runs."""
    if not app.worker_programs:
        return "true"
    names = _programs(app)
    return (f"if systemctl is-active -q supervisor; then supervisorctl start {names} >/dev/null 2>&1; "
            f"supervisorctl status {names}; fi")


def unit_shell_command(command: str) -> str:
    """An ``ExecStart=`` value running ``command`` with ``sh -c`` in the live release: systemd's own specials
    (``%`` specifiers, ``$`` variables, quotes and backslashes) escaped, so sh alone reads the line ($PORT too)."""
    escaped = command.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'/bin/sh -c "exec {escaped}"'


_STEPS = ("build", "prepare", "reload", "restart_workers", "ports", "unit")


def contract_problems(runtime: Runtime) -> list[str]:
    """What a runtime lacks of the contract (docs/runtimes.md), one line each: every step a function, a known
    front, loopback ports and a unit named after the app when nginx proxies to it, an entry default of its own
    grammar, a command only where it runs its own unit."""
    problems = [f"{runtime.name}: {step} is not a function" for step in _STEPS
                if not callable(getattr(runtime, step, None))]
    if problems:
        return problems
    if runtime.front not in (FASTCGI, PROXY):
        problems.append(f"{runtime.name}: front must be {FASTCGI} or {PROXY}, got {runtime.front!r}")
    probe = _Probe(f"probe-{runtime.name}")
    if runtime.front == PROXY:
        first, second = runtime.ports(probe, {}, 0, 2), runtime.ports(probe, {}, 1, 2)
        if not first or set(first) & set(second):
            problems.append(f"{runtime.name}: proxied, so two apps on a host need ports of their own "
                            f"(got {first} and {second})")
        if probe.name not in runtime.unit(probe):
            problems.append(f"{runtime.name}: its unit {runtime.unit(probe)!r} is not named after the app")
    if runtime.entry_pattern is not None and runtime.entry_default and not runtime.entry_pattern.match(
            runtime.entry_default):
        problems.append(f"{runtime.name}: entry default {runtime.entry_default!r} does not fit its own grammar")
    if runtime.takes_command and not runtime.unit(probe):
        problems.append(f"{runtime.name}: takes a command but runs no unit of the app's own")
    return problems


@dataclass(frozen=True)
class _Probe:
    """An app with nothing but a name, to ask a runtime what it would do."""

    name: str
    dest: str = "/srv/probe"
    user: str = "www-data"
    worker_programs: tuple[str, ...] = ()
    health_path: str = "/health"
    composer_plugins: bool = False
    entry: str = ""
    command: str = ""
    processes: int = 0

    @property
    def current(self) -> str:
        """The live release's link."""
        return f"{self.dest}/current"
