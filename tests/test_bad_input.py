"""The bad-input catalogue (docs/bad-input.md): each case is one line naming the file, key and host, raised
before any host is touched (these tests have no network: a connection attempt would fail them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabstack.cli import commands
from fabstack.engine import vault
from fabstack.engine.errors import FabstackError
from fabstack.engine.operations import File
from fabstack.engine.role import RoleContext
from fabstack.engine.templating import environment
from fabstack.engine.varstemplate import Unsafe
from fabstack.tiers.env import load_env

FACTS = {"cpus": 2, "memory_mb": 2048, "nofile_hard": 20000, "container": "podman", "primary_address": "10.0.0.9"}

pytestmark = pytest.mark.usefixtures("no_host_reachable")


def deploy_error(root: Path, *overrides: str, env: str = "sandbox") -> str:
    try:
        commands.deploy(root, env, overrides=list(overrides))
    except FabstackError as exc:
        return exc.line()
    raise AssertionError("deploy did not refuse")


def edit_inventory(root: Path, change) -> None:  # noqa: ANN001
    path = root / "inventory" / "sandbox.yml"
    data = yaml.safe_load(path.read_text())
    change(data["all"]["children"])
    path.write_text(yaml.safe_dump(data))
    (root / "inventory" / "sandbox.topology.yml").unlink(missing_ok=True)


def test_two_primaries(project_copy: Path) -> None:
    edit_inventory(project_copy, lambda c: c["db"]["children"]["db_primary"]["hosts"].update(
        {"db2": c["db"]["children"]["db_replica"]["hosts"].pop("db2")}))
    line = deploy_error(project_copy)
    assert "two primaries: db1, db2" in line and "inventory/sandbox.yml" in line and "host db2" in line


def test_replica_without_a_primary(project_copy: Path) -> None:
    edit_inventory(project_copy, lambda c: c["db"]["children"]["db_replica"]["hosts"].update(
        c["db"]["children"]["db_primary"].pop("hosts")))
    line = deploy_error(project_copy)
    assert "a replica without a primary" in line and "key db_primary" in line and "host db" in line


def test_two_mariadb_primaries(project_copy: Path) -> None:
    path = project_copy / "inventory" / "mariadb.yml"
    data = yaml.safe_load(path.read_text())
    tier = data["all"]["children"]["mariadb"]["children"]
    tier["mariadb_primary"]["hosts"]["mdb2"] = tier["mariadb_replica"]["hosts"].pop("mdb2")
    path.write_text(yaml.safe_dump(data))
    line = deploy_error(project_copy, env="mariadb")
    assert "two primaries: mdb1, mdb2" in line and "inventory/mariadb.yml" in line and "host mdb2" in line


def test_duplicate_host_addresses(project_copy: Path) -> None:
    edit_inventory(project_copy, lambda c: c["app"]["hosts"]["app2"].update(
        ansible_host="10.213.0.21"))
    line = deploy_error(project_copy)
    assert "10.213.0.21:22 is also host app1's" in line and "key ansible_host" in line and "host app2" in line


def test_port_collision(project_copy: Path) -> None:
    (project_copy / "group_vars" / "pgbouncer.yml").write_text("pgbouncer_listen_port: 6379\n")
    line = deploy_error(project_copy)
    assert "port 6379 collides with redis_port" in line and "group_vars/pgbouncer.yml" in line
    assert "host cache1" in line and "key pgbouncer_listen_port" in line


def test_wrong_type_from_the_command_line(project_copy: Path) -> None:
    line = deploy_error(project_copy, "redis_maxmemory_mb=lots")
    assert "--set: key redis_maxmemory_mb: host cache1: expected an integer" in line


def test_vaulted_group_vars_without_password(project_copy: Path, monkeypatch) -> None:  # noqa: ANN001
    for name in ("FABSTACK_VAULT_PASSWORD", "FABSTACK_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = project_copy / "group_vars" / "cache.yml"
    path.write_text(vault.encrypt("redis_app_password: vaulted-1\n", b"pw"))
    line = deploy_error(project_copy)
    assert "group_vars/cache.yml" in line and "no vault password" in line


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=60))
def test_any_string_in_a_variable_only_ever_lands_in_file_content(project_copy: Path, text: str) -> None:
    """A string is refused at input naming its key unless it fits the setting's grammar; one that fits lands in
    file content only, never in a command."""
    # Unsafe (YAML's !unsafe) keeps "{{" in the text literal, as the value would be written with Ansible.
    value = Unsafe(text)
    project = load_env(project_copy, "sandbox")
    project.overrides = {"nginx_client_max_body_size": value, "php_fpm_max_requests": 500}
    try:
        setup = project.setup("app1", None)
    except FabstackError as exc:
        assert exc.key == "nginx_client_max_body_size" and "\n" not in exc.line()
        return
    role = project.roles["nginx"]
    ctx = RoleContext(role=role, host="app1", vars=setup.vars, facts=FACTS, jinja=environment([role.templates_dir]),
                      groups=project.groups(), hostvars=project.hostvars(), root=project.root)
    role.module.deploy(ctx)
    assert re.fullmatch(r"-?[0-9]+[A-Za-z]{0,2}", text), text  # only what fits a size gets this far
    conf = next(op for op in ctx.operations if isinstance(op, File) and op.path == "/etc/nginx/nginx.conf")
    assert f"client_max_body_size {value};".encode() in conf.content
