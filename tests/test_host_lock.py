"""One command at a time per host: the agent's lock (taken, refused naming its holder, stale, forced, never
through a link) and the controller's HostLocks (all or none, waiting bounded), run against the real agent code
on a temporary folder; and a deploy that meets another command's lock waits, then refuses without changing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from fabstack.cli import commands
from fabstack.engine import agent, hostlock, runner
from fabstack.engine.hostlock import HostLocks, LockRefused
from tests.test_engine_promises import RecordingConnection


@pytest.fixture(autouse=True)
def lock_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The agent's lock files in a temporary folder."""
    monkeypatch.setattr(agent, "LOCK_PATH", str(tmp_path / "state" / "lock.json"))
    monkeypatch.setattr(agent, "LOCK_GENERATION", str(tmp_path / "state" / "lock-generation"))
    monkeypatch.setattr(hostlock, "POLL_SECONDS", 0.05)
    return tmp_path / "state"


class LocalSession:
    """A host's session whose agent is this process's (the lock's code as the host runs it), its lock files in
    a folder of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def agent(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer as the host's agent does."""
        agent.LOCK_PATH, agent.LOCK_GENERATION = str(self.folder / "lock.json"), str(self.folder / "lock-generation")
        return agent.ACTIONS[request["action"]](json.loads(json.dumps(request)))

    def close(self) -> None:
        """Nothing to close."""


def holder(command: str, token: str) -> dict[str, Any]:
    return {"owner": "ops@laptop pid 1", "command": command, "since": 0, "token": token}


def test_a_lock_is_refused_to_another_run_naming_its_holder_and_given_up_only_by_its_own() -> None:
    assert agent.lock({"holder": holder("failover switchover", "a"), "stale_after": 60})["taken"]
    refused = agent.lock({"holder": holder("deploy", "b"), "stale_after": 60})
    assert not refused["taken"]
    assert refused["state"]["held"] == {"owner": "ops@laptop pid 1", "command": "failover switchover", "since": 0}
    assert "token" not in json.dumps(refused)  # the holder's token is never handed out
    assert agent.unlock({"token": "b"}) == {"released": False}
    assert agent.lock({"holder": holder("failover switchover", "a"), "stale_after": 60})["taken"]  # its own again
    assert agent.unlock({"token": "a"}) == {"released": True}
    assert agent.lock({"holder": holder("deploy", "b"), "stale_after": 60})["taken"]


def test_a_stale_or_forced_lock_is_taken_over() -> None:
    agent.lock({"holder": holder("deploy", "a"), "stale_after": 60})
    os.utime(agent.LOCK_PATH, (time.time() - 120, time.time() - 120))
    assert agent.lock({"holder": holder("release", "b"), "stale_after": 60})["taken"]
    assert agent.lock({"holder": holder("deploy", "c"), "stale_after": 60, "force": True})["taken"]
    assert agent.lock_state("c")["mine"]


def test_a_lock_taken_since_the_host_was_read_refuses_the_reader() -> None:
    read = agent.lock_state()["generation"]
    agent.lock({"holder": holder("failover switchover", "a"), "stale_after": 60})
    agent.unlock({"token": "a"})
    # free again, but taken and given up in between: the reader's plan may be stale
    assert not agent.lock({"holder": holder("deploy", "b"), "stale_after": 60, "generation": read})["taken"]
    now = agent.lock_state()["generation"]
    assert agent.lock({"holder": holder("deploy", "b"), "stale_after": 60, "generation": now})["taken"]


def test_root_never_follows_a_link_where_the_lock_goes(lock_in: Path, tmp_path: Path) -> None:
    lock_in.mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    os.symlink(target, agent.LOCK_PATH)
    assert not agent.lock({"holder": holder("deploy", "a"), "stale_after": 3600})["taken"]
    assert agent.lock({"holder": holder("deploy", "a"), "stale_after": 3600, "force": True})["taken"]
    assert target.read_text() == "keep" and not os.path.islink(agent.LOCK_PATH)


def test_host_locks_are_taken_all_or_none_and_a_held_one_is_waited_for_then_refused(tmp_path: Path) -> None:
    db1, app1 = LocalSession(tmp_path / "db1"), LocalSession(tmp_path / "app1")
    first = HostLocks("failover switchover --env prod", out=lambda host, text: None)
    first.take({"db1": db1})
    lines: list[tuple[str, str]] = []
    second = HostLocks("deploy --env prod", wait=0.3, out=lambda host, text: lines.append((host, text)))
    started = time.monotonic()
    with pytest.raises(LockRefused, match=r"host db1: locked by .+ running `failover switchover --env prod` "
                                          r"for \d+ s; waited 0 s \(--lock-wait\)"):
        second.take({"db1": db1, "app1": app1})
    assert time.monotonic() - started >= 0.3
    assert lines and lines[0][0] == "db1" and "waiting: locked by" in lines[0][1]
    assert second.taken == {}  # app1's lock, taken first in name order, was given back
    assert not app1.agent({"action": "lock_status"})["locked"]
    first.release()
    second.take({"db1": db1, "app1": app1})
    assert db1.agent({"action": "lock_status", "token": second.token})["mine"]


def test_a_deploy_meeting_another_commands_lock_waits_then_changes_nothing(
        project_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[tuple[str, str]] = []
    held = {"locked": True, "mine": False, "age": 5.0, "generation": 3,
            "held": {"owner": "ci@runner pid 7", "command": "failover switchover --env sandbox", "since": 0}}

    class HeldHost(RecordingConnection):
        def agent(self, request: dict[str, Any]) -> dict[str, Any]:
            answer = super().agent(request)
            return answer | {"lock": held} if request["action"] == "probe" else answer

    monkeypatch.setattr(runner, "connect", lambda project, setup, timeout=10: HeldHost(setup.name, setup.vars, log))
    reports = commands.deploy(project_copy, "sandbox", limit="lb1", lock_wait=0.2)
    assert reports[0].failed and "locked by ci@runner pid 7 running `failover switchover --env sandbox`" in \
        reports[0].error
    assert not [action for _, action in log if action in ("lock", "apply")]
