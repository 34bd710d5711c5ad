"""pytest plugin for role tests: runs a role's tests only on hosts carrying the role; gives them hostvars."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest


def _host_map() -> dict[str, Any]:
    path = os.environ.get("FABSTACK_VERIFY_MAP")
    return json.loads(Path(path).read_text()) if path else {}


def _role_of(path: Path) -> str | None:
    parts = path.parts
    if "roles" in parts:
        index = len(parts) - 1 - parts[::-1].index("roles")
        if index + 1 < len(parts):
            return parts[index + 1]
    return None


@pytest.fixture
def hostvars(host: Any) -> dict[str, Any]:
    """The resolved inventory variables (role defaults included) of the host under test."""
    return _host_map()[host.backend.get_hostname()]["vars"]


@pytest.fixture(autouse=True)
def _only_hosts_with_role(request: pytest.FixtureRequest) -> None:
    if "host" not in request.fixturenames:
        return
    host = request.getfixturevalue("host")
    role = _role_of(Path(str(request.node.fspath)))
    entry = _host_map().get(host.backend.get_hostname())
    if role and entry is not None and role not in entry["roles"]:
        pytest.skip(f"role {role} is not deployed on this host")
