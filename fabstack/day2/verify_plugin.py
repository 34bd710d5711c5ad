"""pytest plugin for role tests: runs a role's tests only on hosts carrying the role; gives them hostvars, and a
``report`` of figures worth reading (replication lag, say) printed after the results."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
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


@pytest.fixture
def computed(host: Any) -> dict[str, Any]:
    """The values the budget computed for the host under test (pool sizes, max_connections, tuning...)."""
    return _host_map()[host.backend.get_hostname()]["computed"]


@pytest.fixture
def fleet() -> dict[str, Any]:
    """Every verified host: its roles, variables, computed values and facts (for cross-host checks)."""
    return _host_map()


Reachable = Callable[[list[tuple[str, int]]], dict[tuple[str, int], bool]]

# How long a probe waits for a TCP handshake: a dropped packet is what a firewall's "closed" looks like.
PROBE_SECONDS = 1


@pytest.fixture
def reachable(host: Any) -> Reachable:
    """Probe TCP ports from the host under test, all at once (a closed port costs one wait, not one each).

    Given ``[(address, port), ...]``, answers ``{(address, port): True if a connection was accepted}``.
    """
    def probe(targets: list[tuple[str, int]]) -> dict[tuple[str, int], bool]:
        unique = sorted(set(targets))
        if not unique:
            return {}
        for address, port in unique:  # they reach a shell: hold them to their grammar
            if not (isinstance(port, int) and 0 < port < 65536 and all(c in "0123456789abcdef.:" for c in address)):
                raise ValueError(f"not an address and port: {address!r} {port!r}")
        jobs = " ".join(f"(timeout {PROBE_SECONDS} bash -c '</dev/tcp/{a}/{p}' 2>/dev/null && echo {i} open) &"
                        for i, (a, p) in enumerate(unique))
        opened = {int(line.split()[0]) for line in host.check_output(f"{jobs} wait").splitlines()
                  if line.endswith(" open")}
        return {target: index in opened for index, target in enumerate(unique)}
    return probe


_REPORTED: list[str] = []


@pytest.fixture
def report(host: Any) -> Callable[[str], None]:
    """Add a line (prefixed with the host's name) to what ``inv verify`` prints after the results."""
    return lambda line: _REPORTED.append(f"{host.backend.get_hostname()}: {line}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the reported lines, in the order the tests wrote them."""
    if _REPORTED:
        terminalreporter.section("reported by the role tests")
        for line in _REPORTED:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect a role's tests on hosts that do not carry the role."""
    host_map = _host_map()
    keep, drop = [], []
    for item in items:
        role = _role_of(Path(str(item.fspath)))
        spec = getattr(item, "callspec", None)
        target = spec.params.get("_testinfra_host") if spec else None
        name = target.backend.get_hostname() if target is not None else None
        entry = host_map.get(name) if name else None
        (drop if role and entry is not None and role not in entry["roles"] else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
