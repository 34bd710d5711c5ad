"""ASGI apps (FastAPI, Starlette, any ``module:attr``) under gunicorn with uvicorn workers: requirements built into
wheels on the controller and installed on the host into the release's own virtualenv (no index is reached from the
host), one systemd unit per app (``fabstack-NAME``) on a loopback port of its own, sent HUP after the switch so
that new workers import the new release while old ones finish their requests."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from fabstack.stack.runtimes import buildstep
from fabstack.stack.runtimes.base import AppLike, Runtime, supervisor_restart

REQUIREMENTS = "requirements.txt"
WHEELS = "wheels"
VENV = ".venv"


def build(app: AppLike, tree: Path) -> None:
    """The requirements as wheels in ``wheels/`` (from the user's own index settings), when there are any."""
    if not (tree / REQUIREMENTS).is_file():
        return
    command = [buildstep.python_for_builds(), "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(tree / WHEELS), "-r",
               str(tree / REQUIREMENTS)]
    buildstep.run(command, tree, "pip wheel", timeout=900)


def prepare(app: AppLike, release: str) -> str:
    """The release's virtualenv (Debian's packages visible), its wheels installed with no index."""
    folder = shlex.quote(release)
    venv = f"{folder}/{VENV}"
    return (f"python3 -m venv --system-site-packages {venv} && if [ -f {folder}/{REQUIREMENTS} ]; then "
            f"{venv}/bin/pip install --quiet --no-index --disable-pip-version-check --find-links {folder}/{WHEELS} "
            f"-r {folder}/{REQUIREMENTS}; fi")


def service(app: AppLike) -> str:
    """The app's systemd unit."""
    return f"fabstack-{app.name}"


def ports(app: AppLike, values: dict[str, Any], index: int, cpus: int) -> list[int]:
    """The loopback port of a host's ``index``-th ASGI app (one gunicorn each): ``uvicorn_port``, each further app
    100 higher."""
    return [int(values.get("uvicorn_port", 8000)) + 100 * index]


# module:attribute, as gunicorn and uvicorn take it (the FastAPI project template's is app.main:app)
ENTRY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")


def reload(app: AppLike) -> str:
    """HUP to gunicorn (new workers on the new code, old ones finish), or a start when it is not running yet."""
    unit = shlex.quote(service(app))
    return f"systemctl reset-failed {unit} 2>/dev/null; systemctl reload-or-restart {unit}"


RUNTIME = Runtime("asgi", build=build, prepare=prepare, reload=reload, restart_workers=supervisor_restart,
                  packages=("python3-venv", "gunicorn"), ports=ports, unit=service, entry_pattern=ENTRY,
                  entry_default="main:app", entry_means="module:attribute, e.g. app.main:app", takes_command=True)
