"""The remote agent's apply steps, run here on temporary files (the agent is plain stdlib Python)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabstack.engine import agent


def file_step(path: Path, content: bytes, validate: str | None = None, step_id: str = "f") -> dict:
    return {"type": "file", "id": step_id, "path": str(path), "content_b64": base64.b64encode(content).decode(),
            "sha256": hashlib.sha256(content).hexdigest(), "owner": None, "group": None, "mode": "0644",
            "validate": validate, "notify": ["reload"]}


def role(steps: list[dict], handler: str = "true") -> dict:
    return {"name": "demo", "steps": steps, "handlers": [{"name": "reload", "command": handler}]}


def test_file_is_written_and_handler_runs_once(tmp_path: Path) -> None:
    marker = tmp_path / "reloaded"
    steps = [file_step(tmp_path / "a.conf", b"a\n", step_id="a"), file_step(tmp_path / "b.conf", b"b\n", step_id="b")]
    results, ok = agent.apply_role(role(steps, handler=f"echo x >> {marker}"))
    assert ok
    assert (tmp_path / "a.conf").read_bytes() == b"a\n"
    assert marker.read_text() == "x\n"
    assert [r["status"] for r in results] == ["changed", "changed", "changed"]


def test_unchanged_file_reports_ok_and_notifies_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_bytes(b"a\n")
    (tmp_path / "a.conf").chmod(0o644)
    results, ok = agent.apply_role(role([file_step(tmp_path / "a.conf", b"a\n")], handler="false"))
    assert ok and [r["status"] for r in results] == ["ok"]


def test_failed_validation_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "site.conf"
    target.write_bytes(b"good\n")
    results, ok = agent.apply_role(role([file_step(target, b"bad\n", validate="grep -q good %s")]))
    assert not ok
    assert target.read_bytes() == b"good\n"
    assert "validation failed" in results[-1]["message"]
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind


def test_a_failing_step_rolls_back_the_roles_earlier_files(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    first = tmp_path / "nginx.conf"
    first.write_bytes(b"old main\n")
    second = tmp_path / "site.conf"
    steps = [file_step(first, b"new main\n", step_id="main"),
             file_step(second, b"broken\n", validate=f"grep -q fine {second}", step_id="site")]
    marker = tmp_path / "reloaded"
    results, ok = agent.apply_role(role(steps, handler=f"touch {marker}"))
    assert not ok
    assert first.read_bytes() == b"old main\n"
    assert not second.exists()
    assert not marker.exists()
    assert results[0]["status"] == "skipped" and "rolled back" in results[0]["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=80))
def test_arbitrary_values_are_written_verbatim_never_run(tmp_path: Path, value: str) -> None:
    canary = tmp_path / "pwned"
    payload = f'{value} $(touch {canary}) `touch {canary}`; touch {canary} \'"\n'.encode()
    target = tmp_path / "value.conf"
    results, ok = agent.apply_role(role([file_step(target, payload)]))
    assert ok, results
    assert target.read_bytes() == payload
    assert not canary.exists()


def test_guarded_command_runs_only_while_guard_unmet(tmp_path: Path) -> None:
    flag = tmp_path / "done"
    step = {"type": "command", "id": "c", "command": f"touch {flag}", "creates": str(flag), "unless": None}
    assert agent.apply_role({"name": "r", "steps": [step], "handlers": []})[0][0]["status"] == "changed"
    assert agent.apply_role({"name": "r", "steps": [step], "handlers": []})[0][0]["status"] == "ok"


def test_release_pruning_removes_only_plain_folders_not_served(tmp_path: Path) -> None:
    releases = tmp_path / "releases"
    for name in ("a", "b", "c"):
        (releases / name).mkdir(parents=True)
    (tmp_path / "current").symlink_to(releases / "b")
    step = {"type": "releases", "id": "r", "path": str(releases), "link": str(tmp_path / "current"),
            "remove": ["a", "b", "../releases", "missing"]}
    results, ok = agent.apply_role({"name": "r", "steps": [step], "handlers": []})
    assert ok and results[0]["status"] == "changed"
    assert sorted(p.name for p in releases.iterdir()) == ["b", "c"]
    assert agent.apply_role({"name": "r", "steps": [step], "handlers": []})[0][0]["status"] == "ok"


def run_bootstrap(tmp_path: Path, request: dict) -> dict:
    """The program a host runs, run here as this user with a throwaway home (and root's cache in tmp_path)."""
    import json
    import os
    import subprocess
    import sys

    from fabstack.engine.connection import bootstrap

    env = {**os.environ, "HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-c", bootstrap(str(tmp_path / "root-cache"))], input=json.dumps(request),
                          capture_output=True, text=True, env=env, timeout=60, check=True)
    return json.loads(proc.stdout)


def test_the_agent_is_compiled_once_and_a_cache_others_can_write_is_never_loaded(tmp_path: Path) -> None:
    import os

    request = {"action": "probe", "items": [{"type": "directory", "path": str(tmp_path)}]}
    first = run_bootstrap(tmp_path, request)
    assert first["states"][0]["kind"] == "directory"
    folder = tmp_path / ("root-cache" if os.geteuid() == 0 else "home/.cache/fabstack")
    [cached] = folder.iterdir()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"

    cached.write_bytes(b"not bytecode")  # a damaged cache is compiled again and replaced
    assert run_bootstrap(tmp_path, request) == first
    assert cached.read_bytes() != b"not bytecode"

    planted = cached.read_bytes()
    cached.chmod(0o666)  # writable by others: someone else could have planted it, so it is not loaded
    cached.write_bytes(planted.replace(b"directory", b"dxrectory"))
    assert run_bootstrap(tmp_path, request) == first


class Killed(BaseException):
    """The run dies here (as on SIGKILL): nothing after this point runs, no cleanup code either."""


POINTS = ["before step", "after step", "before handler", "after handler"]


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("occurrence", [1, 2])
def test_handlers_owed_by_a_killed_run_run_on_the_next_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           point: str, occurrence: int) -> None:
    conf, log = tmp_path / "app.conf", tmp_path / "loaded"
    conf.write_bytes(b"old\n")
    steps = [file_step(conf, b"new\n", step_id="conf"), file_step(tmp_path / "other.conf", b"x\n", step_id="other")]
    steps[1]["notify"] = ["restart"]
    payload = {"name": "demo", "steps": steps,
               "handlers": [{"name": "reload", "command": f"cat {conf} >> {log}"},
                            {"name": "restart", "command": f"cat {conf} >> {log}"}]}
    seen = {"count": 0}

    def die_here(name: str) -> None:
        if name == point:
            seen["count"] += 1
            if seen["count"] == occurrence:
                raise Killed

    monkeypatch.setattr(agent, "checkpoint", die_here)
    with pytest.raises(Killed):
        agent.apply_role(payload)
    monkeypatch.setattr(agent, "checkpoint", lambda name: None)

    results, ok = agent.apply_role(payload)  # the next run: its files may already be as wanted
    assert ok
    assert log.read_text().splitlines()[-1] == "new", "the service was left on the old config"
    assert agent.Pending.read() == {}
    again, _ = agent.apply_role(payload)  # and once settled, nothing is owed any more
    assert [r for r in again if r["id"].startswith("handler ")] == []


def test_a_probe_reports_owed_handlers(tmp_path: Path) -> None:
    agent.Pending.owe("nginx", {"reload nginx": "true"})
    assert agent.probe({"items": []})["pending"] == {"nginx": {"reload nginx": "true"}}


def test_a_service_job_that_never_ends_fails_the_step_instead_of_holding_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a systemctl whose stop job hangs, as Debian's postgresql@ can (its stop timeout is an hour)
    fake = tmp_path / "systemctl"
    fake.write_text('#!/bin/sh\n[ "$1" = stop ] && exec sleep 30\n'
                    '[ "$1" = show ] && echo ActiveState=deactivating && echo SubState=stop-sigterm\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.setattr(agent, "SERVICE_JOB_SECONDS", 0.5)
    with pytest.raises(agent.StepFailed, match=r"systemctl stop db did not finish within 0.5 s "
                                               r"\(ActiveState=deactivating SubState=stop-sigterm\)"):
        agent.systemctl("stop", "db")
