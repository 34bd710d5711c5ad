"""The sandbox hosts for integration tests: started once per session, checked out of band through podman."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

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
