"""Whole-env input checks made before any host is touched: addresses and ports (each db tier checks its own
topology: ``fabstack.tiers.base.Tier.check_topology``).

Per-host checks (types, values) live with each role (``check`` in role.py); these need several hosts at once.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.project import HostSetup, Project


def check_fleet(project: Project, setups: dict[str, HostSetup]) -> None:
    """Raise the first problem found across the env's hosts, naming the file, key and host."""
    _check_addresses(project, setups)
    for setup in setups.values():
        _check_ports(setup)


_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


# What may stand in an ssh_config line or an ssh option: never white space, quotes, '%' tokens or a leading '-'.
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
_KEY_PATH = re.compile(r"^[A-Za-z0-9~._/+@-]{1,1024}$")


def canonical_address(value: str) -> str:
    """An address as one spelling: an IP in its compressed form, a host name in lower case without a final dot.
    Raises ValueError when it is neither."""
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        if not _HOSTNAME.match(value) or value.replace(".", "").isdigit():
            raise
        return value.lower().rstrip(".")


def check_connection(project: Project, setup: HostSetup) -> tuple[str, int]:
    """A host's connection settings, checked: (its canonical address, its port)."""
    v, name = setup.vars, setup.name

    def refuse(key: str, problem: str) -> FabstackError:
        return FabstackError(problem, where=setup.resolved.origin(key) or str(project.inventory.path), key=key,
                             host=name)

    raw_host = v.get("ansible_host", name)
    try:
        address = canonical_address(str(raw_host)) if isinstance(raw_host, str) else ""
    except ValueError:
        address = ""
    if not address:
        raise refuse("ansible_host", f"not a host name or an IP address: {shorten(repr(raw_host))}")
    port = v.get("ansible_port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise refuse("ansible_port", f"must be a port number from 1 to 65535, got {shorten(repr(port))}")
    become = v.get("ansible_become", False)
    if not isinstance(become, bool):
        raise refuse("ansible_become", f"must be true or false, got {shorten(repr(become))}")
    user = v.get("ansible_user")
    if user is not None and (not isinstance(user, str) or not _USER.match(user)):
        raise refuse("ansible_user", f"not a user name (letters, digits, ., _ and -): {shorten(repr(user))}")
    key = v.get("ansible_ssh_private_key_file")
    if key is not None and (not isinstance(key, str) or not _KEY_PATH.match(key)):
        raise refuse("ansible_ssh_private_key_file", f"not a plain file path: {shorten(repr(key))}")
    if key is not None:
        path = project.root / Path(str(key)).expanduser()
        if not isinstance(key, str) or not path.is_file():
            raise refuse("ansible_ssh_private_key_file", f"no private key file at {shorten(str(path), 120)}")
    return address, port


def _check_addresses(project: Project, setups: dict[str, HostSetup]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for name, setup in setups.items():
        address = check_connection(project, setup)
        if address in seen:
            raise FabstackError(f"address {address[0]}:{address[1]} is also host {seen[address]}'s",
                                where=setup.resolved.origin("ansible_host") or str(project.inventory.path),
                                key="ansible_host", host=name)
        seen[address] = name


def _check_ports(setup: HostSetup) -> None:
    used: dict[int, str] = {}
    for role in setup.roles:
        for key in role.ports:
            port = setup.vars.get(key)
            if not isinstance(port, int):
                continue
            if not 0 < port < 65536:
                raise FabstackError(f"port {port} is out of range", where=setup.resolved.origin(key), key=key,
                                    host=setup.name)
            if port in used and used[port] != key:
                raise FabstackError(f"port {port} collides with {used[port]}", where=setup.resolved.origin(key),
                                    key=key, host=setup.name)
            used[port] = key


