"""What README promises of the engine, checked without any host: check mode stops after the probe, handlers run
once each in declaration order (and not at all after a failed step), symlink and absent steps roll back,
generated secrets, and host keys refused when unknown or changed (a real SSH handshake over a socket pair)."""

from __future__ import annotations

import base64
import hashlib
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import yaml

from fabstack.cli import commands
from fabstack.engine import agent, runner
from fabstack.engine import connection as conn_module
from fabstack.engine.connection import HostConnection
from fabstack.engine.errors import FabstackError
from fabstack.engine.secrets import generated_secrets, save_generated, secrets_path
from fabstack.tiers.env import load_env

# ------------------------------------------------------------------ check mode, through the whole runner


# What an empty host answers to each kind of probe: nothing installed, nothing running, no file.
EMPTY_HOST_STATE: dict[str, dict[str, Any]] = {
    "file": {"exists": False}, "directory": {"exists": False}, "symlink": {"exists": False},
    "absent": {"exists": False}, "packages": {"installed": {}},
    "service": {"active": "inactive", "enabled": "disabled"}, "sysctl": {"value": "0", "writable": True},
    "account": {"exists": False}, "command": {"satisfied": False},
    "releases": {"entries": [], "current": ""},
}


class RecordingConnection:
    """Stands in for a host's SSH session: answers as an empty host would and records every request."""

    memory_mb = 2048  # what every recorded host reports; a test changes it to see a re-plan

    def __init__(self, name: str, hostvars: dict[str, Any], log: list[tuple[str, str]]) -> None:
        self.name = name
        self.address = str(hostvars["ansible_host"])
        self.log = log
        self.round_trips = 0

    def open(self) -> None:
        """Nothing to open."""

    def close(self) -> None:
        """Nothing to close."""

    def agent(self, request: dict[str, Any]) -> dict[str, Any]:
        """The agent's answer for an empty host with two cores and 2 GB."""
        self.round_trips += 1
        self.log.append((self.name, request["action"] + ("+facts" if request.get("facts") else "")))
        if request["action"] == "facts":
            return self.facts()
        if request["action"] in ("lock", "unlock"):  # nobody else's command holds an empty host
            return {"taken": True} if request["action"] == "lock" else {"released": True}
        if request["action"] == "probe":
            answer = {"states": [EMPTY_HOST_STATE[item["type"]] for item in request["items"]]}
            return answer | ({"facts": self.facts()} if request.get("facts") else {})
        return {"results": [{"id": step["id"], "type": step["type"], "status": "changed"}
                            for role in request["roles"] for step in role["steps"]]}

    def facts(self) -> dict[str, Any]:
        """The facts of a host with two cores."""
        return {"hostname": self.name, "cpus": 2, "memory_mb": self.memory_mb, "nofile_hard": 20000, "container": "",
                    "virtualization": "kvm", "init": "systemd", "proc_sys_writable": True,
                    "os": {"id": "debian", "version_id": "12", "codename": "bookworm", "pretty_name": "Debian 12"},
                    "disks": [{"name": "vda", "rotational": False, "size_gb": 40.0}], "python": "3.11.2",
                    "addresses": [{"interface": "eth0", "address": self.address, "prefix": 24, "family": "inet"}],
                "primary_address": self.address}


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every agent request the runner makes, as (host, action); no host is ever contacted."""
    log: list[tuple[str, str]] = []
    monkeypatch.setattr(runner, "connect", lambda project, setup, timeout=10: RecordingConnection(
        setup.name, setup.vars, log))
    return log


def test_check_mode_stops_after_the_probe_and_reports_what_would_change(
        project_copy: Path, recorded: list[tuple[str, str]]) -> None:
    reports = commands.deploy(project_copy, "sandbox", limit="lb1", check=True)
    assert recorded == [("lb1", "facts"), ("lb1", "probe")]  # no apply request, ever
    events = reports[0].events
    assert events and reports[0].count("changed") > 0
    assert all(e.message == "(check mode: not applied)" for e in events if e.status == "changed")
    assert any(e.diff.startswith("--- /dev/null") for e in events)  # a new file shows its whole content


def test_a_second_run_with_the_same_facts_is_one_round_trip(
        project_copy: Path, recorded: list[tuple[str, str]]) -> None:
    first = commands.deploy(project_copy, "sandbox", limit="lb1", check=True)
    recorded.clear()
    second = commands.deploy(project_copy, "sandbox", limit="lb1", check=True)
    assert recorded == [("lb1", "probe+facts")]  # planned from the remembered facts, probed with the real ones
    assert [(e.operation, e.status, e.diff) for e in second[0].events] == \
        [(e.operation, e.status, e.diff) for e in first[0].events]


def test_changed_facts_are_planned_again_from_the_real_ones(
        project_copy: Path, recorded: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    commands.deploy(project_copy, "sandbox", limit="app1", check=True)
    recorded.clear()
    monkeypatch.setattr(RecordingConnection, "memory_mb", 8192)
    reports = commands.deploy(project_copy, "sandbox", limit="app1", check=True, diff=True)
    assert recorded == [("app1", "probe+facts"), ("app1", "probe")]  # the guessed plan's probes no longer fit
    pool = next(e for e in reports[0].events if e.operation.endswith("/pool.d/app.conf"))
    children = fabstack_budget_children(project_copy, memory_mb=8192)
    assert f"pm.max_children = {children}" in pool.diff  # sized for the memory the host really has


def fabstack_budget_children(root: Path, memory_mb: int) -> int:
    """PHP-FPM children the tuning gives app1 with this much memory (the number the pool file must carry)."""
    project = load_env(root, "sandbox")
    taken = project.roles["php_fpm"].commitment(project.setup("app1", None).vars, {"memory_mb": memory_mb, "cpus": 2})
    assert taken is not None
    return taken.computed["php_fpm_max_children"]


def test_without_check_the_same_plan_is_applied_in_one_more_round_trip_per_wave_under_the_hosts_lock(
        project_copy: Path, recorded: list[tuple[str, str]]) -> None:
    reports = commands.deploy(project_copy, "sandbox", limit="lb1")
    actions = [action for _, action in recorded]
    # the host's lock is taken before the first change and given up after the last
    assert actions[:3] == ["facts", "probe", "lock"] and set(actions[3:-1]) == {"apply"} and actions[-1] == "unlock"
    recorded.clear()
    commands.deploy(project_copy, "sandbox", limit="lb1")
    actions = [action for _, action in recorded]
    assert actions[0] == "probe+facts" and set(actions[2:-1]) == {"apply"}  # the empty host still needs it all
    assert not reports[0].failed and reports[0].count("changed") > 0


# ------------------------------------------------------------------ handlers and rollback, in the agent


def file_step(path: Path, content: bytes, notify: list[str], step_id: str, validate: str | None = None) -> dict:
    """An agent step writing ``content`` to ``path``."""
    return {"type": "file", "id": step_id, "path": str(path), "content_b64": base64.b64encode(content).decode(),
            "sha256": hashlib.sha256(content).hexdigest(), "owner": None, "group": None, "mode": "0644",
            "validate": validate, "notify": notify}


def handlers(log: Path, *names: str) -> list[dict]:
    """Handlers that each append their name to ``log``."""
    return [{"name": name, "command": f"echo {name} >> {log}"} for name in names]


def test_handlers_run_once_each_in_declaration_order(tmp_path: Path) -> None:
    log = tmp_path / "handlers.log"
    steps = [file_step(tmp_path / "a", b"a", ["restart", "reload"], "a"),
             file_step(tmp_path / "b", b"b", ["reload"], "b"),
             file_step(tmp_path / "c", b"c", ["restart"], "c")]
    role = {"name": "demo", "steps": steps, "handlers": handlers(log, "reload", "restart", "never")}
    results, ok = agent.apply_role(role)
    assert ok
    assert log.read_text().split() == ["reload", "restart"]  # declared order, not notification order; once each
    assert [r["id"] for r in results if r["id"].startswith("handler ")] == ["handler reload", "handler restart"]


def test_handlers_do_not_run_for_unchanged_steps(tmp_path: Path) -> None:
    log = tmp_path / "handlers.log"
    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "a").chmod(0o644)
    role = {"name": "demo", "steps": [file_step(tmp_path / "a", b"a", ["reload"], "a")],
            "handlers": handlers(log, "reload")}
    assert agent.apply_role(role)[1]
    assert not log.exists()


def test_no_handler_runs_when_a_later_step_fails(tmp_path: Path) -> None:
    log = tmp_path / "handlers.log"
    steps = [file_step(tmp_path / "a", b"a", ["reload"], "a"),
             file_step(tmp_path / "b", b"b", ["restart"], "b", validate="false %s")]
    results, ok = agent.apply_role({"name": "demo", "steps": steps, "handlers": handlers(log, "reload", "restart")})
    assert not ok
    assert not log.exists()
    assert results[-1]["status"] == "failed" and "validation failed" in results[-1]["message"]


def failing_step(tmp_path: Path) -> dict:
    """A step that always fails (a file whose validation refuses it)."""
    return file_step(tmp_path / "broken.conf", b"x", [], "broken", validate="false %s")


def test_a_replaced_symlink_is_put_back_when_the_role_fails(tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    link = tmp_path / "current"
    link.symlink_to(tmp_path / "v1")
    swap = {"type": "symlink", "id": "link", "path": str(link), "target": str(tmp_path / "v2"), "notify": []}
    results, ok = agent.apply_role({"name": "demo", "steps": [swap, failing_step(tmp_path)], "handlers": []})
    assert not ok
    assert link.is_symlink() and Path(link.readlink()) == tmp_path / "v1"
    assert results[0]["status"] == "skipped" and "rolled back" in results[0]["message"]


def test_a_new_symlink_is_removed_when_the_role_fails(tmp_path: Path) -> None:
    link = tmp_path / "current"
    make = {"type": "symlink", "id": "link", "path": str(link), "target": str(tmp_path), "notify": []}
    assert not agent.apply_role({"name": "demo", "steps": [make, failing_step(tmp_path)], "handlers": []})[1]
    assert not link.is_symlink() and not link.exists()


def test_a_removed_file_comes_back_with_its_mode_when_the_role_fails(tmp_path: Path) -> None:
    target = tmp_path / "old.conf"
    target.write_bytes(b"keep me\n")
    target.chmod(0o640)
    remove = {"type": "absent", "id": "absent", "path": str(target), "notify": []}
    results, ok = agent.apply_role({"name": "demo", "steps": [remove, failing_step(tmp_path)], "handlers": []})
    assert not ok
    assert target.read_bytes() == b"keep me\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert results[0]["status"] == "skipped"


# ------------------------------------------------------------------ generated secrets


def test_generated_secrets_are_created_once_and_kept_private(tmp_path: Path) -> None:
    first = generated_secrets(tmp_path, "prod", {"db_password", "redis_password"})
    path = secrets_path(tmp_path, "prod")
    assert not path.exists()  # kept in memory until a run's local checks pass
    save_generated(tmp_path, "prod")
    again = generated_secrets(tmp_path, "prod", {"db_password", "redis_password", "new_password"})
    assert again["db_password"] == first["db_password"] and again["redis_password"] == first["redis_password"]
    assert len(set(again.values())) == 3 and all(len(v) >= 24 for v in again.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert generated_secrets(tmp_path, "staging", {"db_password"})["db_password"] != first["db_password"]


def test_a_password_set_in_group_vars_wins_over_the_generated_one(project_copy: Path) -> None:
    generated = load_env(project_copy, "sandbox").setup("cache1", None).vars["redis_app_password"]
    assert generated and load_env(project_copy, "sandbox").setup("cache1", None).vars[
        "redis_app_password"] == generated  # the same on every load
    with (project_copy / "group_vars" / "all.yml").open("a") as handle:
        handle.write("\nredis_app_password: Team-Chosen-Value-1\n")
    assert load_env(project_copy, "sandbox").setup("cache1", None).vars["redis_app_password"] == \
        "Team-Chosen-Value-1"
    save_generated(project_copy, "sandbox")
    stored = yaml.safe_load(secrets_path(project_copy, "sandbox").read_text())
    assert stored["redis_app_password"] == generated  # the generated one is kept, for when the value goes


# ------------------------------------------------------------------ host keys, over a real SSH handshake


@pytest.fixture
def ssh_server() -> Iterator[tuple[socket.socket, paramiko.PKey]]:
    """One end of a socket pair with an SSH server (its own host key) on the other: no network involved."""
    client_end, server_end = socket.socketpair()
    key = paramiko.ECDSAKey.generate()
    transport = paramiko.Transport(server_end)
    transport.add_server_key(key)
    # with an event, the server negotiates in paramiko's own thread and nothing here blocks or waits on a timer
    transport.start_server(event=threading.Event(), server=paramiko.ServerInterface())
    try:
        yield client_end, key
    finally:
        client_end.close()  # the server's thread reads end-of-file and stops
        transport.close()


def open_over(sock: socket.socket, known_hosts: Path, tmp_path: Path) -> None:
    """Open fabstack's SSH connection to host db1 over ``sock``, trusting ``known_hosts`` only."""
    conn = HostConnection("db1", {"ansible_host": "db1.example", "ansible_user": "deploy"}, tmp_path, [known_hosts])
    conn.fabric.connect_kwargs["sock"] = sock
    conn.fabric.connect_kwargs.update(look_for_keys=False, allow_agent=False)
    conn.open()


def test_an_unknown_host_key_is_refused(ssh_server: tuple[socket.socket, paramiko.PKey], tmp_path: Path) -> None:
    sock, _ = ssh_server
    known = tmp_path / "known_hosts"
    known.write_text("")
    with pytest.raises(FabstackError) as err:
        open_over(sock, known, tmp_path)
    assert "unknown host key for db1.example" in err.value.line() and "host db1" in err.value.line()


def test_a_changed_host_key_is_refused(ssh_server: tuple[socket.socket, paramiko.PKey], tmp_path: Path) -> None:
    sock, key = ssh_server
    other = paramiko.ECDSAKey.generate()
    known = tmp_path / "known_hosts"
    known.write_text(f"db1.example {other.get_name()} {other.get_base64()}\n")
    with pytest.raises(FabstackError) as err:
        open_over(sock, known, tmp_path)
    assert "host key CHANGED for db1.example" in err.value.line() and "host db1" in err.value.line()
    assert key.get_base64() != other.get_base64()


def test_a_peer_hanging_up_before_its_banner_is_asked_again(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    conn = HostConnection("db1", {"ansible_host": "db1.example"}, tmp_path, [])
    monkeypatch.setattr(conn_module.time, "sleep", lambda _: None)
    answers = [paramiko.SSHException("Error reading SSH protocol banner"), None]

    def fake_open() -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    monkeypatch.setattr(conn.fabric, "open", fake_open)
    conn.open()
    assert answers == []  # the second attempt was made, and it succeeded
    answers[:] = [paramiko.SSHException("Error reading SSH protocol banner")] * (conn_module.BANNER_ATTEMPTS + 1)
    with pytest.raises(FabstackError, match="protocol banner"):
        conn.open()
    assert len(answers) == 1  # BANNER_ATTEMPTS at most
    answers[:] = [paramiko.SSHException("Authentication failed."), None]
    with pytest.raises(FabstackError, match="Authentication failed"):
        conn.open()
    assert len(answers) == 1  # other refusals are final at once


def test_each_host_is_worked_out_once_per_command(project_copy: Path, no_host_reachable: list[str]) -> None:
    from fabstack.day2.release import open_rollouts
    from fabstack.engine.runner import declare_offline, select_hosts
    from fabstack.tiers.env import plan_env
    from tests.test_roles_declare import SMALL, host_facts

    # deploy: the input checks, then every host planned with its facts (the budget over the whole env)
    project = load_env(project_copy, "sandbox")
    select_hosts(project)
    facts = {h: host_facts(project.hostvars()[h]["ansible_host"], h, dict(SMALL, memory_mb=4096)) for h in
             project.inventory.hosts}
    declare_offline(project, facts)
    assert project.resolves == {h: 1 for h in project.inventory.hosts}
    # release: the same checks, each app's rollout with its hosts, load balancers and addresses
    project, rollouts = open_rollouts(project_copy, "sandbox", None, out=lambda _: None)
    for rollout in rollouts:
        assert rollout.lb_hosts and [rollout.address(h) for h in rollout.all_hosts]
    assert project.resolves == {h: 1 for h in project.inventory.hosts}
    # verify: the checks, every host's setup and the budget for the map the tests read
    project = load_env(project_copy, "sandbox")
    select_hosts(project)
    plan_env(project, {h: project.setup(h, None) for h in project.inventory.hosts}, facts)
    assert project.resolves == {h: 1 for h in project.inventory.hosts}
    # --set works everything out again, once
    project.use_overrides({"nginx_worker_connections": 2048})
    select_hosts(project)
    assert project.resolves == {h: 2 for h in project.inventory.hosts}
    assert no_host_reachable == []
