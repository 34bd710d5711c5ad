"""Shared helpers for fabstack's tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from fabstack.engine import agent

REPO = Path(__file__).resolve().parent.parent

# Hypothesis keeps its examples and caches in the temporary folder, not in the checkout (which may be read-only).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / f"fabstack-hypothesis-{os.getuid()}")


@pytest.fixture(autouse=True)
def pending_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The agent run in-process keeps its owed handlers in a temporary folder, never in /var/lib."""
    monkeypatch.setattr(agent.Pending, "path", str(tmp_path_factory.mktemp("pending") / "pending-handlers.json"))
    yield


# What the sandbox leaves in a checkout when it runs: host keys, the failover topology, its SSH key, secrets.
SANDBOX_STATE = ("*.known_hosts", "*.topology.yml")


def copy_project(dest: Path, with_roles: bool = False, with_state: bool = False) -> Path:
    """A copy of this repo's deployment files (inventory, group_vars, site.yml; roles if asked) under ``dest``.

    Only the files git tracks, as a fresh clone has them, unless ``with_state``: then also what the running
    sandbox left (its host keys, topology, SSH key and generated secrets), for tests that reach its hosts.
    """
    ignore = shutil.ignore_patterns("__pycache__", *(() if with_state else SANDBOX_STATE))
    for name in ("inventory", "group_vars", "apps"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    shutil.copy(REPO / "site.yml", dest / "site.yml")
    if with_roles:
        shutil.copytree(REPO / "roles", dest / "roles", ignore=ignore)
    for state in ("sandbox", "secrets") if with_state else ():
        if (REPO / ".fabstack" / state).is_dir():
            shutil.copytree(REPO / ".fabstack" / state, dest / ".fabstack" / state)
    key = dest / ".fabstack" / "sandbox" / "id_ed25519"
    if not key.exists():  # the inventory names a private key, and a deploy refuses a missing one
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text("a stand-in: this copy never reaches a host\n")
        key.chmod(0o600)
    return dest


FAKE_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9V710kHYLR9oKQAcJ9W+vNDIqigpWC3vUQmNR3aST/"


def record_fake_host_keys(root: Path, env: str) -> None:
    """Record one made-up SSH host key for every host of an env (roles that let one host reach another over SSH
    trust only recorded keys), unless keys are recorded already."""
    from fabstack.tiers.env import load_env

    path = root / "inventory" / f"{env}.known_hosts"
    if path.exists():
        return
    project = load_env(root, env)
    path.write_text("".join(f"{project.setup(name, None).vars['ansible_host']} {FAKE_HOST_KEY}\n"
                            for name in project.inventory.hosts))


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A throwaway deployment repo that a test may edit, as a fresh clone has it (no sandbox state)."""
    return copy_project(tmp_path / "repo")


@pytest.fixture
def no_host_reachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SSH connection attempt fails at once and is recorded; the test fails if any was made.

    For tests of input that must be refused before any host is touched: a regression then fails the test
    instead of deploying to whatever answers at the inventory's addresses (the sandbox, when it is up).
    """
    from fabstack.engine.connection import HostConnection
    from fabstack.engine.errors import FabstackError

    attempts: list[str] = []

    def refuse(self: HostConnection) -> None:
        attempts.append(self.name)
        raise FabstackError("a bad-input test tried to connect", host=self.name)

    monkeypatch.setattr(HostConnection, "open", refuse)
    yield attempts
    assert not attempts, f"hosts were contacted before the input was refused: {attempts}"
