"""End to end on the sandbox: converge, idempotence, check mode, validation, failures, host keys."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from fabstack.cli import commands
from fabstack.day2.verify import verify
from fabstack.engine.errors import FabstackError
from tests.conftest import REPO, copy_project
from tests.integration.conftest import in_host


def changed(reports: list) -> int:
    return sum(r.count("changed") for r in reports)


def test_second_deploy_changes_nothing_in_one_round_trip(deployed: list, tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    reports = commands.deploy(REPO, "sandbox", json_path=str(report_file))
    assert changed(reports) == 0
    assert all(not r.failed for r in reports)
    assert {r.round_trips for r in reports} == {1}  # planned from remembered facts, probed with the real ones
    data = json.loads(report_file.read_text())
    assert data["changed"] == 0 and set(data["hosts"]) == {r.host for r in reports} >= {"lb1", "db1", "cache1"}


def test_verify_passes_after_deploy(deployed: list) -> None:
    assert verify(REPO, "sandbox") == 0


def test_files_are_owned_by_root_though_we_log_in_as_deploy(deployed: list) -> None:
    assert yaml.safe_load((REPO / "inventory/sandbox.yml").read_text())["all"]["vars"]["ansible_user"] == "deploy"
    assert in_host("lb1", "stat -c %U:%a /etc/nginx/nginx.conf").stdout.strip() == "root:644"


def lb_get(path: str) -> dict:
    """A request through the load balancer, made on the LB host itself (sandbox traffic only)."""
    out = in_host("lb1", f"curl -sfk 'https://127.0.0.1{path}'")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_each_app_kind_answers_through_lb_with_rows_and_redis(deployed: list) -> None:
    php, fastapi, express = lb_get("/"), lb_get("/api/"), lb_get("/school/")
    assert (php["app"], fastapi["app"], express["app"]) == ("php", "fastapi", "express")
    assert {php["host"], fastapi["host"], express["host"]} <= {"app1", "app2"}  # the app hosts serve every app
    page = in_host("lb1", "curl -sfk https://127.0.0.1/web/").stdout  # Next.js, rendered from the Express API
    assert "item 1" in page and "cached at" in page, page[:300]
    for body in (php, fastapi, express):
        assert [row["name"] for row in body["rows"]][:2] == ["item 1", "item 2"]  # read through PgBouncer (ro)
        assert body["redis"]  # a value from Redis
        assert body["rw_is_standby"] is False  # the rw entry reaches the primary


def test_queued_jobs_are_processed_and_reach_the_replica(deployed: list) -> None:
    for prefix, kind in (("", "php"), ("/api", "fastapi"), ("/school", "express")):
        job = lb_get(f"{prefix}/enqueue?payload=e2e{prefix.strip('/')}")["queued"]
        for _ in range(50):
            found = in_host("db2", "runuser -u postgres -- psql -X -At -d app -c "
                                   f"\"select kind from jobs_done where job_id = '{job}'\"").stdout.strip()
            if found:
                break
            time.sleep(0.2)
        assert found == kind


def test_container_sysctls_are_reported_skipped_with_reason(deployed: list) -> None:
    events = [e for e in deployed[0].events if e.operation == "sysctl vm.overcommit_memory"]
    assert len(events) == 1
    event = events[0]
    value = in_host(deployed[0].host, "cat /proc/sys/vm/overcommit_memory").stdout.strip()
    if event.status == "skipped":  # the container cannot set it, and says why
        assert "read-only" in event.message and value != "1"
    else:  # the machine already has it (the kernel setting is shared with the host): nothing to do
        assert event.status == "ok" and value == "1", (event.status, event.message)


def test_check_mode_prints_template_diff_and_changes_nothing(deployed: list, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    root = copy_project(tmp_path / "repo", with_roles=True, with_state=True)
    template = root / "roles/nginx/templates/servers.jinja"
    template.write_text(template.read_text().replace("index index.php;", "index index.php;\n    etag off;"))
    before = in_host("app1", "sha256sum /etc/nginx/sites-enabled/fabstack.conf").stdout
    reports = commands.deploy(root, "sandbox", limit="app1", check=True)
    out = capsys.readouterr().out
    assert re.search(r"^app1\s+\| \+\s+etag off;$", out, re.M), out
    assert "+++ /etc/nginx/sites-enabled/fabstack.conf" in out
    assert in_host("app1", "sha256sum /etc/nginx/sites-enabled/fabstack.conf").stdout == before
    assert reports[0].round_trips == 2  # a fresh copy remembers no facts: facts first, then the probe
    assert changed(reports) == 1


def test_broken_nginx_value_keeps_old_config_and_nginx_serving(deployed: list, tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo", with_state=True)
    with (root / "group_vars/lb.yml").open("a") as handle:
        handle.write("nginx_client_max_body_size: 16pc\n")  # a size by its grammar, not one nginx knows
    before = in_host("lb1", "sha256sum /etc/nginx/nginx.conf").stdout
    reports = commands.deploy(root, "sandbox", limit="lb1")
    assert commands.fail_on(reports) != 0
    failed = [e for e in reports[0].events if e.status == "failed"]
    assert len(failed) == 1 and "/etc/nginx/nginx.conf" in failed[0].message
    assert "validation failed" in failed[0].message and reports[0].host == "lb1"
    assert in_host("lb1", "sha256sum /etc/nginx/nginx.conf").stdout == before
    assert in_host("lb1", "systemctl is-active nginx").stdout.strip() == "active"
    assert '"app":"php"' in in_host("lb1", "curl -sfk https://127.0.0.1/").stdout


def test_bad_template_variable_on_one_host_changes_no_host(deployed: list, tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo", with_roles=True, with_state=True)
    lb_template = root / "roles/nginx/templates/lb.conf.j2"
    broken = lb_template.read_text().replace("least_conn;", "least_conn; # {{ nginx_upstream_weights }}")
    lb_template.write_text(broken)
    app_template = root / "roles/nginx/templates/php.conf.j2"
    app_template.write_text(app_template.read_text().replace("index index.php;", "index index.php;\n    etag off;"))
    before = in_host("app1", "sha256sum /etc/nginx/sites-enabled/fabstack.conf").stdout
    reports = commands.deploy(root, "sandbox", limit="lb,app")
    lb = next(r for r in reports if r.host == "lb1")
    assert "lb.conf.j2:" in lb.error and "nginx_upstream_weights" in lb.error and "host lb1" in lb.error
    assert commands.fail_on(reports) != 0
    assert in_host("app1", "sha256sum /etc/nginx/sites-enabled/fabstack.conf").stdout == before
    assert changed(reports) == 0


def test_budget_that_does_not_fit_is_refused_before_any_change(deployed: list, capsys) -> None:  # noqa: ANN001
    reports = commands.deploy(REPO, "sandbox", overrides=["postgresql_max_connections=40"])
    out = capsys.readouterr().out
    assert commands.fail_on(reports) != 0 and changed(reports) == 0
    assert re.search(r"REFUSED .*key postgresql_max_connections: host db1: .*50 server connections", out), out
    assert in_host("db1", "runuser -u postgres -- psql -X -At -c 'show max_connections'").stdout.strip() == "63"


def test_shell_metacharacters_in_a_value_are_never_run(deployed: list) -> None:
    value = "1m; $(touch /tmp/pwned) `touch /tmp/pwned` \"'\n include /etc/passwd;"
    with pytest.raises(FabstackError) as caught:  # refused by the setting's grammar, before any host ...
        commands.deploy(REPO, "sandbox", limit="app1", overrides=[f"nginx_client_max_body_size={value}"])
    assert caught.value.key == "nginx_client_max_body_size" and "\n" not in caught.value.line()
    # ... and a value that fits the grammar but not nginx is refused by nginx -t, the old file kept
    reports = commands.deploy(REPO, "sandbox", limit="app1", overrides=["nginx_client_max_body_size=1zz"])
    assert commands.fail_on(reports) != 0
    assert in_host("app1", "test -e /tmp/pwned").returncode == 1  # nothing in either ran
    assert in_host("app1", "systemctl is-active nginx").stdout.strip() == "active"
    assert "client_max_body_size 1zz" not in in_host("app1", "cat /etc/nginx/nginx.conf").stdout


def test_unreachable_host_fails_alone(deployed: list, tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo", with_state=True)
    inventory = root / "inventory/sandbox.yml"
    data = yaml.safe_load(inventory.read_text())
    data["all"]["children"]["ghosts"] = {"hosts": {"ghost1": {"ansible_host": "10.213.0.31", "ansible_port": 2222}}}
    inventory.write_text(yaml.safe_dump(data))
    reports = commands.deploy(root, "sandbox", limit="ghost1,db1")
    by_host = {r.host: r for r in reports}
    assert by_host["ghost1"].failed and "unreachable" in by_host["ghost1"].error
    assert "host ghost1" in by_host["ghost1"].error
    assert not by_host["db1"].failed and by_host["db1"].count("ok") > 0
    assert commands.fail_on(reports) != 0


def test_changed_or_unknown_host_key_is_refused(deployed: list, tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo", with_state=True)
    known = root / "inventory/sandbox.known_hosts"
    lines = known.read_text().splitlines()
    lb_key = next(line for line in lines if line.startswith("10.213.0.11 ")).split(" ", 1)[1]
    known.write_text("\n".join(f"10.213.0.31 {lb_key}" if line.startswith("10.213.0.31 ") else line
                               for line in lines) + "\n")
    reports = commands.deploy(root, "sandbox", limit="db1")
    assert "host key CHANGED" in reports[0].error and "host db1" in reports[0].error
    known.write_text("\n".join(line for line in lines if not line.startswith("10.213.0.31 ")) + "\n")
    reports = commands.deploy(root, "sandbox", limit="db1")
    assert "unknown host key" in reports[0].error


def test_inventory_facts_override_plans_for_a_bigger_box(deployed: list, capsys) -> None:  # noqa: ANN001
    reports = commands.deploy(REPO, "sandbox", limit="lb1", check=True,
                              overrides=["fabstack_facts={cpus: 8, nofile_hard: 5000}"])
    out = capsys.readouterr().out
    assert re.search(r"^lb1\s+\| \+worker_processes 8;$", out, re.M), out
    assert re.search(r"^lb1\s+\| \+worker_rlimit_nofile 5000;$", out, re.M), out
    assert re.search(r"^lb1\s+\| \+\s+worker_connections 2372;$", out, re.M), out
    assert in_host("lb1", "grep -c 'worker_processes 8;' /etc/nginx/nginx.conf").stdout.strip() == "0"
    assert not reports[0].failed


def test_hosts_trust_records_keys_and_refuses_a_changed_one(deployed: list, tmp_path: Path) -> None:
    from fabstack.engine.hostkeys import trust
    from fabstack.tiers.env import load_env

    root = copy_project(tmp_path / "repo", with_state=True)
    known = root / "inventory/sandbox.known_hosts"
    known.unlink()
    assert "unknown host key" in commands.deploy(root, "sandbox", limit="db1")[0].error
    lines: list[str] = []
    assert trust(load_env(root, "sandbox"), ["db1", "lb1"], update=False, out=lines.append) == 2
    assert any(line.startswith("db1") and "recorded" in line for line in lines)
    assert not commands.deploy(root, "sandbox", limit="db1")[0].failed
    assert trust(load_env(root, "sandbox"), ["db1"], update=False, out=lines.append) == 0
    entries = known.read_text().splitlines()
    lb_key = next(e for e in entries if e.startswith("10.213.0.11 ")).split(" ", 1)[1]
    known.write_text("\n".join(f"10.213.0.31 {lb_key}" if e.startswith("10.213.0.31 ") else e for e in entries) + "\n")
    try:
        trust(load_env(root, "sandbox"), ["db1"], update=False, out=lines.append)
        raise AssertionError("a changed key was accepted")
    except FabstackError as exc:
        assert "host key CHANGED" in exc.line() and "host db1" in exc.line()
    assert "host key CHANGED" in commands.deploy(root, "sandbox", limit="db1")[0].error


def test_no_secret_value_appears_in_any_output(deployed: list, tmp_path: Path) -> None:
    import subprocess
    import sys

    from fabstack.engine.secrets import secrets_path

    new_password = "Fresh-Redis-Secret-9f8e7d"
    report = tmp_path / "report.json"
    inv = str(Path(sys.executable).parent / "inv")
    proc = subprocess.run(
        [inv, "--search-root", str(REPO), "deploy", "--root", str(REPO), "--check", "--diff", "-vv",
         "--json", str(report), "--set", f"redis_app_password={new_password}"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    everything = proc.stdout + proc.stderr + report.read_text()
    assert "changed" in proc.stdout  # the new password changes files, so there were diffs to print
    secrets = set(yaml.safe_load(secrets_path(REPO, "sandbox").read_text()).values()) | {new_password}
    tls_key = next(s for s in secrets if "PRIVATE KEY-----" in s)  # the LB's generated key: no line of it either
    secrets |= {line for line in tls_key.split("-----BEGIN CERTIFICATE-----")[0].splitlines()[1:-1] if line}
    found = [s for s in secrets if s in everything]
    assert found == [], f"{len(found)} secret values printed"
