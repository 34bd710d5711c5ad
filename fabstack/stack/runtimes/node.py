"""Node.js apps (Express, Next.js): ``npm ci`` and the app's build script on the controller (``node_modules``
ships in the artifact: hosts fetch nothing), Debian's nodejs on the hosts, one systemd instance per port. A reload
restarts the host's instances one at a time, each waiting until it answers its health check, so the host serves
throughout; systemd resolves ``current`` when an instance starts, so every instance runs the new release's path.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from typing import Any

from fabstack.stack.runtimes import buildstep
from fabstack.stack.runtimes.base import AppLike, Runtime, supervisor_restart
from fabstack.stack.tuning import one_per_core

# Seconds an instance may take to answer its health check after a restart.
START_SECONDS = 30


def _npm(tree: Path, *args: str) -> None:
    buildstep.run(["npm", *args], tree, f"npm {args[0]}", timeout=900)


def build(app: AppLike, tree: Path) -> None:
    """``npm ci`` (or install without a lock), the app's ``build`` script if any, then dev dependencies pruned.
    A Next.js app built with ``output: 'standalone'`` ships its self-contained server instead (its traced files
    only: a tenth of a full node_modules), with its static assets and ``public/`` beside it."""
    if not (tree / "package.json").is_file():
        return
    quiet = ("--no-audit", "--no-fund", "--loglevel=error")
    _npm(tree, "ci" if (tree / "package-lock.json").is_file() else "install", *quiet)
    _npm(tree, "run", "build", "--if-present")
    if (tree / STANDALONE / "server.js").is_file():
        _keep_standalone(tree)
    else:
        _npm(tree, "prune", "--omit=dev", *quiet)


STANDALONE = Path(".next/standalone")


def _keep_standalone(tree: Path) -> None:
    """Replace the built tree with Next.js's standalone server, its static assets, public/ and REVISION."""
    bundle = tree.parent / "standalone"
    shutil.move(str(tree / STANDALONE), bundle)
    shutil.copytree(tree / ".next" / "static", bundle / ".next" / "static")
    for extra in ("public", "REVISION"):
        source = tree / extra
        if source.is_dir():
            shutil.copytree(source, bundle / extra)
        elif source.is_file():
            shutil.copy2(source, bundle / extra)
    shutil.rmtree(tree)
    bundle.rename(tree)


def prepare(app: AppLike, release: str) -> str:
    """Nothing to do on the host: the artifact holds node_modules and the built app."""
    return "true"


def unit(app: AppLike) -> str:
    """The app's systemd template unit: one instance per port (``fabstack-NAME@PORT``)."""
    return f"fabstack-{app.name}@"


def reload(app: AppLike) -> str:
    """Restart the host's instances one at a time, each back and healthy before the next."""
    pattern = shlex.quote(f"{unit(app)}*.service")
    path = shlex.quote(app.health_path)
    return (f"for u in $(systemctl list-units --all --plain --no-legend {pattern} | awk '{{print $1}}'); do "
            f"port=${{u#*@}}; port=${{port%.service}}; systemctl reset-failed \"$u\" 2>/dev/null; "
            f"systemctl restart \"$u\" || exit 1; ok=; for i in $(seq {START_SECONDS * 5}); do "
            f"if curl -sf -o /dev/null \"http://127.0.0.1:$port\"{path}; then ok=1; break; fi; sleep 0.2; done; "
            f"[ -n \"$ok\" ] || {{ echo \"$u did not answer {app.health_path} after {START_SECONDS} s\"; exit 1; }}; "
            "done")


RUNTIME = Runtime("node", build=build, prepare=prepare, reload=reload, restart_workers=supervisor_restart,
                  packages=("nodejs",))


def instance_ports(values: dict[str, Any], index: int, cpus: int) -> list[int]:
    """The loopback ports of the instances of a host's ``index``-th Node.js app: ``node_instances`` (0: one per
    core) from ``node_first_port``, each further app 100 ports higher."""
    first = int(values.get("node_first_port", 3000)) + 100 * index
    return list(range(first, first + one_per_core(cpus, int(values.get("node_instances", 0)))))
