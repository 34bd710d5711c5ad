"""One command at a time changes a host, across operators, clones and CI: deploy, release, failover, rejoin and
backup restore each hold a lock on every host they change (kept by the agent on the host, so whoever connects
sees it). The lock names its holder: who (user, machine, process), which command, since when. A second command
waits a bounded time for it, then refuses naming the holder; a lock older than ``STALE_SECONDS`` is taken over,
and ``--force-unlock`` takes one over at once (for a holder known to be gone).

A command may nest another (a manual failover re-runs the deploy): the inner one is handed the outer's
``HostLocks`` and takes what it needs under the same token, and only the outer gives them up.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fabstack.engine.errors import FabstackError, shorten

# A lock older than this is a leftover (a run killed with its controller): the next command takes it over.
STALE_SECONDS = 3600.0
# How long a command waits for another's lock before it refuses (its --lock-wait).
WAIT_SECONDS = 60.0
POLL_SECONDS = 1.0


class AgentSession(Protocol):
    """What the lock needs of a host's session: one agent request, one answer (a closed one opens again)."""

    def agent(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a request to the host's agent."""
        ...

    def close(self) -> None:
        """Close the session."""
        ...


def lock_owner() -> str:
    """Who takes a lock in this process: user, machine and process."""
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"


def owner_gone(owner: str) -> bool:
    """Whether a lock's owner is a process of this machine that no longer runs."""
    where, _, pid = owner.rpartition(" pid ")
    if where.split("@")[-1] != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def describe(state: Mapping[str, Any]) -> str:
    """A held lock in words: its owner, command and age (and whether its owner is gone)."""
    if not state.get("locked"):
        return "another command took its lock since it was read (and has given it up)"
    held = state.get("held") or {}
    owner = str(held.get("owner") or "an unknown owner")
    gone = " (its owner is gone)" if owner_gone(owner) else ""
    return (f"locked by {shorten(owner)} running `{shorten(str(held.get('command') or '?'))}` for "
            f"{float(state.get('age', 0)):.0f} s{gone}")


def held_by_another(state: Mapping[str, Any] | None, stale_after: float = STALE_SECONDS) -> bool:
    """Whether a lock state (as a probe reports it) is another run's, and not stale."""
    return bool(state) and bool(state.get("locked")) and not state.get("mine") and \
        float(state.get("age", 0)) <= stale_after


class LockRefused(FabstackError):
    """A host's lock held by another command (after waiting ``waited`` seconds), or taken by one since the host
    was read (``moved``)."""

    def __init__(self, host: str, state: Mapping[str, Any], *, waited: float = 0.0, moved: bool = False) -> None:
        self.state, self.moved = dict(state), moved
        if moved:
            message = "another command took this host's lock since it was read: what was planned may be stale"
        else:
            message = f"{describe(state)}; waited {waited:.0f} s (--lock-wait), --force-unlock takes it over"
        super().__init__(message, host=host)


@dataclass
class HostLocks:
    """The locks one command holds: taken all or none over a set of hosts, given up together."""

    command: str
    wait: float = WAIT_SECONDS
    force: bool = False
    stale_after: float = STALE_SECONDS
    # where a waiting line goes: (host, text)
    out: Callable[[str, str], None] = lambda host, text: print(f"{host:<8} | {text}")
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    since: float = field(default_factory=time.time)
    taken: dict[str, AgentSession] = field(default_factory=dict)

    @property
    def holder(self) -> dict[str, Any]:
        """What the lock file says of this command."""
        return {"owner": lock_owner(), "command": self.command, "since": round(self.since), "token": self.token}

    def take(self, sessions: Mapping[str, AgentSession], generations: Mapping[str, int] | None = None) -> None:
        """Take every host's lock, or none: hosts another run holds are waited for (bounded by ``wait``), then
        refused naming the holder. With ``generations`` (as each host's probe read them) nothing is waited for:
        a host held, or locked by another run since it was read, is refused at once (``LockRefused.moved``),
        since what was planned from it may be out of date."""
        deadline = time.monotonic() + self.wait
        said: set[str] = set()
        while True:
            refused = self._attempt(sessions, generations)
            if refused is None:
                return
            if generations is not None:
                raise LockRefused(refused[0], refused[1], moved=True)
            if time.monotonic() >= deadline:
                raise LockRefused(refused[0], refused[1], waited=self.wait)
            name, state = refused
            if name not in said:
                said.add(name)
                self.out(name, f"waiting: {describe(state)}")
            time.sleep(POLL_SECONDS)

    def _attempt(self, sessions: Mapping[str, AgentSession],
                 generations: Mapping[str, int] | None) -> tuple[str, dict[str, Any]] | None:
        """One pass over the hosts in name order (so two commands never hold parts of each other's sets and
        wait forever); on a refusal the locks this pass took are given back."""
        this_pass: list[str] = []
        for name in sorted(sessions):
            request: dict[str, Any] = {"action": "lock", "holder": self.holder, "force": self.force,
                                       "stale_after": self.stale_after}
            if generations is not None and name in generations and name not in self.taken:
                request["generation"] = generations[name]
            answer = sessions[name].agent(request)
            if not answer.get("taken"):
                for taken in this_pass:
                    self._give_up(taken)
                return name, answer.get("state") or {}
            if name not in self.taken:
                this_pass.append(name)
                self.taken[name] = sessions[name]
        return None

    def _give_up(self, name: str) -> None:
        session = self.taken.pop(name)
        was_open = getattr(session, "connected", True)
        try:
            session.agent({"action": "unlock", "token": self.token})
        except (FabstackError, OSError):
            pass  # unreachable now: the lock goes stale, or --force-unlock takes it over
        if not was_open:  # its command had closed it: opened again for this request only
            session.close()

    def release(self) -> None:
        """Give up every lock this command holds (a host that no longer answers keeps it until it is stale)."""
        for name in list(self.taken):
            self._give_up(name)
