"""What every runtime is: its steps on the controller and on a host."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class AppLike(Protocol):
    """What a runtime reads of an app (fabstack.stack.apps.App)."""

    name: str
    dest: str
    user: str
    worker_programs: tuple[str, ...]
    health_path: str
    composer_plugins: bool

    @property
    def current(self) -> str:  # noqa: D102
        ...


@dataclass(frozen=True)
class Runtime:
    """One kind of app. Every step but ``build`` is a shell command run as root on a host."""

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
