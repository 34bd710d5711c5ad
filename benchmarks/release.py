"""Release benchmark on the sandbox: a new commit of each app released under load through the load balancer,
then rolled back under load. Prints build seconds, bytes shipped per host, release and rollback wall time, and
requests served / failed during each, and writes a plot of each one's latency over time (failed requests marked)
to .fabstack/reports/. Asserts nothing.

All traffic goes to sandbox addresses; the load is bounded in count and time (tests.integration.chaos.Load).
Usage: .venv/bin/python benchmarks/release.py
"""

from __future__ import annotations

import io
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from common import REPO, quiet_deploy, sandbox_up, write_plot

from fabstack.day2 import release
from fabstack.sandbox.hosts import git
from fabstack.stack.artifact import build
from tests.integration.chaos import Load

APPS = {"shop": ("/", "resources/views/about.blade.php", "{{-- %s --}}"),
        "fastapi": ("/api/", "record_release.py", "# %s")}


def new_commit(app: str, scratch: Path) -> None:
    """One more commit on the app's main branch in its sandbox repository."""
    _, changed, comment = APPS[app]
    work = scratch / f"{app}-{time.monotonic_ns()}"
    git("clone", "--quiet", str(REPO / f".fabstack/sandbox/git/{app}.git"), str(work), cwd=scratch)
    (work / changed).write_text((work / changed).read_text() + "\n" + comment % f"benchmark {time.time_ns()}\n")
    git("commit", "--quiet", "-am", "benchmark release", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)


def main() -> None:
    """Release then roll back each app once, under load, and print the figures."""
    sandbox_up()
    quiet_deploy()
    _, rollouts = release.open_rollouts(REPO, "sandbox", None, out=lambda _: None)
    with tempfile.TemporaryDirectory() as scratch:
        for rollout in rollouts:
            app = rollout.app.name
            new_commit(app, Path(scratch))
            started = time.monotonic()
            artifact = build(REPO, rollout.app)
            build_seconds = time.monotonic() - started
            with Load(APPS[app][0]) as during_release, redirect_stdout(io.StringIO()):
                [shipped] = release.release(REPO, "sandbox", app=app)
            with Load(APPS[app][0]) as during_rollback, redirect_stdout(io.StringIO()):
                [back] = release.rollback(REPO, "sandbox", app=app)
            with redirect_stdout(io.StringIO()):
                release.release(REPO, "sandbox", app=app)  # main again
            per_host = ", ".join(f"{h} {n}" for h, n in sorted(shipped.bytes_shipped.items()))
            print(f"{app} ({rollout.app.runtime.name}): build {build_seconds:.2f} s, artifact {artifact.size} bytes; "
                  f"shipped per host: {per_host}")
            print(f"  release  {shipped.seconds:.2f} s over {len(shipped.changed)} hosts: "
                  f"{during_release.total} requests, {during_release.failed} non-2xx, "
                  f"{len(during_release.errors)} connection errors")
            print(f"  rollback {back.seconds:.2f} s over {len(back.changed)} hosts: "
                  f"{during_rollback.total} requests, {during_rollback.failed} non-2xx, "
                  f"{len(during_rollback.errors)} connection errors")
            for what, load, seconds in (("release", during_release, shipped.seconds),
                                        ("rollback", during_rollback, back.seconds)):
                plot = write_plot(f"release-{app}-{what}", f"{app}: latency through the LB during a {what} "
                                                           f"({seconds:.1f} s)", load.samples)
                print(f"  plot: {plot}")


if __name__ == "__main__":
    main()
