"""Shared helpers for fabstack's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def copy_project(dest: Path, with_roles: bool = False) -> Path:
    """A copy of this repo's deployment files (inventory, group_vars, site.yml; roles if asked) under ``dest``."""
    for name in ("inventory", "group_vars", "apps"):
        shutil.copytree(REPO / name, dest / name)
    shutil.copy(REPO / "site.yml", dest / "site.yml")
    if with_roles:
        shutil.copytree(REPO / "roles", dest / "roles", ignore=shutil.ignore_patterns("__pycache__"))
    for state in ("sandbox", "secrets"):  # the sandbox's SSH key and the env's generated secrets
        if (REPO / ".fabstack" / state).is_dir():
            shutil.copytree(REPO / ".fabstack" / state, dest / ".fabstack" / state)
    return dest


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A throwaway deployment repo that a test may edit."""
    return copy_project(tmp_path / "repo")
