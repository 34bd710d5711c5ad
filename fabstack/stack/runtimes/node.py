"""Node.js apps (Express, express-generator, Next.js): ``npm ci`` and the app's build script on the controller
(``node_modules`` ships in the artifact: hosts fetch nothing), Debian's nodejs on the hosts, one systemd instance
per port. The file an instance runs is the app's own: ``entry``, else ``package.json``'s ``scripts.start`` when it
is ``node FILE``, else its ``main``, else ``server.js``; it is found at build time and recorded in the release
(``START_FILE``). A reload restarts the host's instances one at a time, each waiting until it answers its health
check, so the host serves throughout; systemd resolves ``current`` when an instance starts, so every instance runs
the new release's path.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

from fabstack.engine.errors import FabstackError
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
    if not app.command:
        record_entry(tree, entry_of(app, tree))


# In a release: the file its instances run, as systemd reads it (root writes it at build; the app never can: the
# app's writable and shared paths may not reach into .fabstack/).
START_FILE = ".fabstack/start.env"
ENTRY_VARIABLE = "FABSTACK_ENTRY"
# a file of the release: relative, no "..", no leading dash (node would read an option), nothing a unit file or
# a shell would read otherwise
ENTRY = re.compile(r"^(?![/-])(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._/@+-]{1,200}$")
_NODE_FILE = re.compile(r"^node\s+(\S+)\s*$")


def entry_of(app: AppLike, tree: Path) -> str:
    """The file the app's instances run: ``entry``, else ``scripts.start`` when it is ``node FILE``, else ``main``,
    else ``server.js``; refused in one line unless it is a plain file of the built tree."""
    entry = app.entry
    if not entry:
        try:
            package = json.loads((tree / "package.json").read_text()) if (tree / "package.json").is_file() else {}
        except (OSError, ValueError) as exc:
            raise FabstackError(f"package.json: {exc}", key=f"apps[{app.name}]") from None
        scripts = package.get("scripts") if isinstance(package, dict) else None
        start = scripts.get("start") if isinstance(scripts, dict) else None
        found = _NODE_FILE.match(start) if isinstance(start, str) else None
        main = package.get("main") if isinstance(package, dict) else None
        entry = found.group(1) if found else main if isinstance(main, str) and main else "server.js"
    entry = entry.removeprefix("./")
    if not ENTRY.match(entry) or not _plain_file(tree, entry):
        raise FabstackError(f"the entry {entry!r} is not a file of the built app (set entry, or package.json's "
                            "scripts.start or main)", key=f"apps[{app.name}].entry")
    return entry


def _plain_file(tree: Path, relative: str) -> bool:
    """Whether ``relative`` is a regular file of ``tree`` reached through no link."""
    path = tree
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            return False
    return path.is_file()


def record_entry(tree: Path, entry: str) -> None:
    """Write ``START_FILE`` into the built tree (a link or other file in its place is replaced, never followed)."""
    folder = tree / os.path.dirname(START_FILE)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        folder.unlink()
    folder.mkdir(exist_ok=True)
    target = tree / START_FILE
    if target.is_symlink() or target.exists():
        target.unlink()
    target.write_text(f"{ENTRY_VARIABLE}={entry}\n")


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


def ports(app: AppLike, values: dict[str, Any], index: int, cpus: int) -> list[int]:
    """The loopback ports of the instances of a host's ``index``-th Node.js app: the app's ``processes``, else
    ``node_instances`` (0: one per core), from ``node_first_port``, each further app 100 ports higher."""
    first = int(values.get("node_first_port", 3000)) + 100 * index
    return list(range(first, first + one_per_core(cpus, app.processes or int(values.get("node_instances", 0)))))


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
                  packages=("nodejs",), ports=ports, unit=unit, entry_pattern=ENTRY, entry_default="",
                  entry_means="a file of the app (default: package.json's scripts.start 'node FILE', else main)",
                  takes_command=True)
