"""The db hosts of one tier of an env, reached once for a whole day-2 command (``inv failover``, backups): who
is primary, replica or fenced as the inventory and the recorded topology say, SSH to each, and re-running the
deploy so hosts follow a new topology. Each tier's own commands (``fabstack/tiers/TIER/failover.py``) build on it;
``fabstack.tiers.env.open_fleet`` opens one.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from fabstack.engine.errors import FabstackError
from fabstack.engine.hostlock import HostLocks
from fabstack.engine.project import Project, load_project
from fabstack.engine.remote import RemoteHost, reach
from fabstack.engine.report import Printer
from fabstack.engine.runner import execute, select_hosts
from fabstack.tiers.topology import DbGroups, Topology, load_topology, save_topology

T = TypeVar("T")
S = TypeVar("S")


def in_parallel(ask: Callable[[str], T], names: list[str]) -> dict[str, T]:
    """``ask(name)`` for every name at once; name -> answer, in the names' order."""
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        return dict(zip(names, pool.map(ask, names), strict=True))


def at_once(*actions: Callable[[], object]) -> None:
    """Run independent steps at the same time; the first failure is raised once all have ended."""
    with ThreadPoolExecutor(max_workers=max(1, len(actions))) as pool:
        for future in [pool.submit(action) for action in actions]:
            future.result()


CONNECT_TIMEOUT = 1.0
# Seconds a host's SSH port has to accept a TCP connection before the host counts as down, without waiting for
# SSH at all: a live host's kernel answers a connection at once even when the host is busy, while a dead one
# never answers, and every second spent waiting for a dead primary is a second without writes.
PROBE_TIMEOUT = 0.3


def answers(address: str, port: int, timeout: float) -> bool:
    """Whether ``address:port`` accepts a TCP connection within ``timeout`` seconds."""
    try:
        socket.create_connection((address, port), timeout=timeout).close()
    except OSError:
        return False
    return True


@dataclass
class Fleet:
    """The env's hosts (a db tier's and the others a command needs), reached once for a whole command."""

    project: Project
    out: Callable[[str], None]
    # the db tier the command works on (``fabstack.tiers.registry.TIERS``) and the names of its groups
    tier: str
    groups: DbGroups
    hosts: dict[str, RemoteHost] = field(default_factory=dict)
    # seconds a host has to answer SSH before it counts as down: short, since while the primary is dead every
    # second spent waiting for it is a second without writes (the sandbox's hosts answer in about 0.2 s)
    connect_timeout: float = CONNECT_TIMEOUT
    probe_timeout: float = PROBE_TIMEOUT
    # the hosts' locks this command holds (a deploy it re-runs takes what it needs under the same token)
    locks: HostLocks | None = None

    @property
    def topology(self) -> Topology:
        """The recorded topology."""
        return load_topology(self.project.inventory.path, self.tier)

    def record(self, topology: Topology) -> None:
        """Record the tier's new topology and reload the env so groups follow it."""
        save_topology(self.project.inventory.path, topology, self.tier)
        self.project = reloaded(self.project)

    def group(self, name: str) -> list[str]:
        """Hosts of an inventory group (after the topology is applied)."""
        return self.project.inventory.select(name) if name in self.project.inventory.groups else []

    @property
    def db_hosts(self) -> list[str]:
        """Every database host of the tier: primary, replicas and fenced ones."""
        return [h for name in self.groups.all() for h in self.group(name)]

    @property
    def primary(self) -> str:
        """The tier's primary as the inventory and recorded topology say ("" if none)."""
        return (self.group(self.groups.primary) or [""])[0]

    @property
    def replicas(self) -> list[str]:
        """The tier's replicas as the inventory and recorded topology say."""
        return self.group(self.groups.replica)

    def address(self, name: str) -> str:
        """A host's address (``ansible_host``, else its name)."""
        return str(self.project.hostvars()[name].get("ansible_host", name))

    def ssh_port(self, name: str) -> int:
        """A host's SSH port."""
        return int(self.project.setup(name, None).vars.get("ansible_port", 22))

    def answers(self, name: str) -> bool:
        """Whether a host is up: as reached already, else by its SSH port accepting a connection (no SSH)."""
        if name in self.hosts:
            return self.hosts[name].reachable
        return answers(self.address(name), self.ssh_port(name), self.probe_timeout)

    def host(self, name: str) -> RemoteHost:
        """A host, connected on first use."""
        if name not in self.hosts:
            if self.answers(name):
                self.hosts[name] = reach(self.project, name, self.connect_timeout)
            else:
                self.hosts[name] = RemoteHost(self.project.setup(name, None), None, f"port {self.ssh_port(name)} "
                                              f"did not answer within {self.probe_timeout}s")
        return self.hosts[name]

    def ask(self, name: str, question: Callable[[RemoteHost], S], down: Callable[[str, str], S], server: str) -> S:
        """A host's answer to ``question``, or ``down(name, why)`` when SSH or its database server does not
        answer (the tier's ``state`` builds on this)."""
        host = self.host(name)
        if not host.reachable:
            return down(name, f"unreachable: {host.error}")
        try:
            return question(host)
        except FabstackError as exc:
            return down(name, f"{server} not answering: {exc.message}")

    def lock(self, names: list[str], command: str, *, wait: float, force: bool) -> None:
        """Take the locks of those hosts that answer (a dead primary has nobody to keep out), waiting (bounded)
        for another command's; given up by ``close``."""
        self.locks = HostLocks(command, wait=wait, force=force, out=lambda host, text: self.out(f"{host:<8} | {text}"))
        self.connect(names)
        self.locks.take({name: self.hosts[name].conn for name in names if self.hosts[name].conn is not None})

    def connect(self, names: list[str]) -> None:
        """Reach several hosts at once (each within the connect timeout)."""
        in_parallel(self.host, names)

    def close(self) -> None:
        """Give up the locks this command holds, and close every SSH session."""
        if self.locks is not None:
            self.locks.release()
        for host in self.hosts.values():
            host.close()


def reloaded(project: Project) -> Project:
    """The env loaded afresh with the same rules (after a topology was recorded, groups follow it)."""
    return load_project(project.root, project.env, rules=project.rules)


def plan_or_stop(fleet: Fleet, plan: str, reasons: list[str], target: str, check: bool) -> bool:
    """Print a command's plan; refuse it with every reason found; say whether to stop there (``--check``)."""
    fleet.out(f"plan: {plan}")
    if reasons:
        raise FabstackError("refused: " + "; ".join(reasons), host=target)
    if check:
        fleet.out("check mode: stopping after the plan")
    return check


def converge(fleet: Fleet, roles: str | None, limit: str) -> None:
    """Re-run the deploy (of some roles, or all) so hosts follow the recorded topology: PgBouncer's rw entry,
    slots and synchronous_standby_names, and whatever site.yml gives the primary (the backups)."""
    project = reloaded(fleet.project)
    # the deploy's own lines are not shown: the summary below is, and a failure names its host and reason
    printer = Printer(project.masker, stream=io.StringIO())
    reports = execute(project, select_hosts(project, limit, roles), check=False, printer=printer, locks=fleet.locks)
    failed = [r for r in reports if r.failed]
    changed = sum(r.count("changed") for r in reports)
    fleet.out(f"  deploy{' --roles ' + roles if roles else ''} --limit {limit}: {changed} changed"
              + (f", FAILED on {', '.join(r.host for r in failed)}" if failed else ""))
    if failed:
        first = failed[0]
        reason = first.error or next((f"{e.operation}: {e.message}" for e in first.events if e.status == "failed"), "")
        raise FabstackError(f"converging {roles or 'every role'} failed: {project.masker(reason)}", host=first.host)
    fleet.project = reloaded(project)  # the topology may have changed groups
