"""``inv hosts.trust``: record each host's SSH key beside the inventory, so later runs refuse a changed one."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import paramiko

from fabstack.engine.errors import FabstackError
from fabstack.engine.inventory import host_entry, known_hosts_path
from fabstack.engine.project import Project, load_project


def fetch_key(address: str, port: int, timeout: float = 10) -> paramiko.PKey:
    """The host's SSH key, as its server offers it (no authentication)."""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=timeout)
            return transport.get_remote_server_key()
        finally:
            transport.close()


def trust(project: Project, hosts: list[str], update: bool, out: Callable[[str], None] = print) -> int:
    """Record the keys of ``hosts`` in ``inventory/ENV.known_hosts``; a key that differs from the recorded one is
    refused (named) unless ``update``. Returns how many keys were added or replaced."""
    path = known_hosts_path(project.inventory)
    known = paramiko.HostKeys(str(path)) if path.is_file() else paramiko.HostKeys()
    changed = 0
    for name in hosts:
        values = project.setup(name, None).vars
        address, port = str(values.get("ansible_host", name)), int(values.get("ansible_port", 22))
        entry = host_entry(address, port)
        try:
            key = fetch_key(address, port)
        except (OSError, paramiko.SSHException) as exc:
            raise FabstackError(f"cannot fetch the host key from {entry}: {exc}", host=name) from exc
        recorded = known.lookup(entry) or {}
        current = recorded.get(key.get_name())
        if current is not None and current == key:
            out(f"{name:<8} {entry:<18} {key.get_name()} already trusted")
            continue
        if current is not None and not update:
            raise FabstackError(f"host key CHANGED for {entry} ({key.get_name()}): not recorded; if the host was "
                                "really rebuilt, run again with --update", where=str(path), host=name)
        known.add(entry, key.get_name(), key)
        changed += 1
        out(f"{name:<8} {entry:<18} {key.get_name()} {'updated' if current is not None else 'recorded'} "
            f"(SHA256 fingerprint {key.fingerprint})")
    if changed:
        known.save(str(path))
    return changed


def trust_hosts(root: Path, env: str, limit: str | None, update: bool) -> int:
    """``inv hosts.trust``: record the SSH keys of the env's hosts (or ``limit``'s)."""
    project = load_project(root, env)
    return trust(project, project.inventory.select_limit(limit), update)
