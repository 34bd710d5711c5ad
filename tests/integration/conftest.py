"""The sandbox hosts for integration tests: started once per session, checked out of band through podman."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabstack.cli import commands
from tests.conftest import REPO


def in_host(host: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command inside a sandbox host through podman (not through fabstack's own SSH path)."""
    return subprocess.run(["podman", "exec", f"fabstack-{host}", "sh", "-c", command],
                          capture_output=True, text=True, check=False, timeout=timeout)


@pytest.fixture(scope="session")
def podman_root() -> None:
    """Skip (fail under CI) unless podman is installed and we are root, as scripts/setup.sh leaves the machine."""
    if shutil.which("podman") is None or os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("integration tests need podman and root (run scripts/setup.sh)")
        pytest.skip("podman or root missing: run scripts/setup.sh as root")


@pytest.fixture(scope="session")
def sandbox(podman_root: None) -> Iterator[None]:
    """The sandbox hosts, up and reachable (removed at the end unless FABSTACK_KEEP_SANDBOX is set)."""
    commands.sandbox_up(REPO, "sandbox")
    yield
    if not os.environ.get("FABSTACK_KEEP_SANDBOX"):
        commands.sandbox_down(REPO, "sandbox")


@pytest.fixture(scope="session")
def deployed(sandbox: None) -> list:
    """The sandbox after a full deploy of the repo's own site.yml (asserted to have succeeded)."""
    reports = commands.deploy(REPO, "sandbox")
    assert not [r.host for r in reports if r.failed], [(r.host, r.error, r.events) for r in reports if r.failed]
    return reports


# Envs brought up in the background while lynis audits the sandbox (CPU-bound, timing nothing), and the module
# that uses each. Not sooner: the tests right after the deploy measure rates and timings.
AHEAD = {"mariadb": "test_mariadb.py", "patroni": "test_patroni.py"}


def bring_up_others_ahead(session: pytest.Session) -> None:
    """Start the envs of AHEAD whose module this session runs, each in a process of its own logged to a file."""
    for env, module in AHEAD.items():
        if any(item.path.name == module for item in session.items):
            bring_up_ahead(env)
_BRINGING_UP: dict[str, tuple[subprocess.Popen, Path]] = {}


def bring_up_ahead(env: str) -> None:
    """Start an env's hosts and deploy them in a process of their own (once per session)."""
    if env in _BRINGING_UP:
        return
    log = REPO / ".fabstack" / f"{env}-bring-up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    script = ("import sys; from pathlib import Path; from fabstack.cli import commands; "
              f"commands.sandbox_up(Path('.'), {env!r}); reports = commands.deploy(Path('.'), {env!r}); "
              "sys.exit(1 if any(r.failed for r in reports) else 0)")
    with log.open("w") as out:
        _BRINGING_UP[env] = (subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=out,
                                              stderr=subprocess.STDOUT), log)


def env_up(env: str) -> Iterator[None]:
    """An env's hosts for one module: up and deployed (in the background while lynis ran, or now), removed at the
    end unless FABSTACK_KEEP_SANDBOX is set. A module fixture yields from it."""
    try:
        brought_up(env)
        yield
    finally:
        if not os.environ.get("FABSTACK_KEEP_SANDBOX"):
            commands.sandbox_down(REPO, env)


def brought_up(env: str, seconds: float = 900) -> None:
    """Wait (bounded) for an env's bring-up, started now if nothing started it; fail with its log's end."""
    bring_up_ahead(env)
    process, log = _BRINGING_UP[env]
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{env}: not up and deployed after {seconds}s: {log_excerpt(log)}") from None
    assert process.returncode == 0, f"{env}: bring-up failed: {log_excerpt(log)}"


def log_excerpt(log: Path) -> str:
    """What a failed bring-up's log says first: the steps that failed (not those skipped after them), then its end."""
    lines = log.read_text().splitlines()
    failed = [line for line in lines if "| failed " in line.lower() and "failed before it" not in line]
    return "\n".join([*failed[:10], "...", *lines[-25:]])
