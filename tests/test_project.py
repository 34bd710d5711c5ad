"""Local input checks: every bad input is one line naming file, key and host, raised before any host is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabstack.cli import commands
from fabstack.engine.errors import FabstackError
from fabstack.engine.project import parse_overrides
from fabstack.engine.role import RoleContext
from fabstack.engine.templating import environment
from fabstack.tiers.env import load_env
from tests.conftest import REPO, copy_project

FACTS = {"cpus": 2, "memory_mb": 2048, "nofile_hard": 20000, "container": "podman", "primary_address": "10.0.0.9"}

pytestmark = pytest.mark.usefixtures("no_host_reachable")


def error_of(action) -> str:  # noqa: ANN001
    with pytest.raises(FabstackError) as err:
        action()
    return err.value.line()


def test_wrong_type_names_file_key_and_host(project_copy: Path) -> None:
    (project_copy / "group_vars" / "lb.yml").write_text("nginx_site: lb\nnginx_worker_connections: lots\n")
    project = load_env(project_copy, "sandbox")
    line = error_of(lambda: project.setup("lb1", None))
    assert "group_vars/lb.yml" in line and "key nginx_worker_connections" in line and "host lb1" in line
    assert "expected an integer" in line


def test_zero_or_negative_size_is_refused(project_copy: Path) -> None:
    project = load_env(project_copy, "sandbox")
    project.overrides = parse_overrides(["nginx_worker_connections=0"])
    line = error_of(lambda: project.setup("app1", None))
    assert "key nginx_worker_connections" in line and "host app1" in line and "must be from 1 to" in line


def test_unknown_role_in_site_yml(project_copy: Path) -> None:
    (project_copy / "site.yml").write_text("- hosts: all\n  roles: [common, nosuchrole]\n")
    line = error_of(lambda: load_env(project_copy, "sandbox"))
    assert "site.yml" in line and "nosuchrole" in line


def test_unknown_roles_selector(project_copy: Path) -> None:
    line = error_of(lambda: commands.deploy(project_copy, "sandbox", roles="nginx,ngnix"))
    assert "ngnix" in line and "--roles" in line


def test_unknown_limit_stops_before_any_host(project_copy: Path) -> None:
    line = error_of(lambda: commands.deploy(project_copy, "sandbox", limit="lb9"))
    assert "'lb9'" in line and "--limit" in line


def test_malformed_group_vars_stop_the_deploy(project_copy: Path) -> None:
    (project_copy / "group_vars" / "app.yml").write_text("nginx_site: [static\n")
    line = error_of(lambda: commands.deploy(project_copy, "sandbox"))
    assert "group_vars/app.yml:" in line and "malformed YAML" in line


def test_undefined_template_variable_names_template_line_variable_and_host(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo", with_roles=True)
    template = root / "roles" / "nginx" / "templates" / "servers.jinja"
    template.write_text(template.read_text().replace("index index.php;", "index {{ nginx_index_page }};"))
    project = load_env(root, "sandbox")
    setup = project.setup("app1", None)
    role = project.roles["nginx"]
    ctx = RoleContext(role=role, host="app1", vars=setup.vars, facts=FACTS,
                      jinja=environment([role.templates_dir]), groups=project.groups(), hostvars=project.hostvars())
    line = error_of(lambda: role.module.deploy(ctx))
    assert "servers.jinja:" in line and "key nginx_index_page" in line and "host app1" in line


def test_every_template_starts_with_the_managed_header() -> None:
    for template in Path(__file__).parent.parent.glob("roles/*/templates/*.j2"):
        head = "".join(template.read_text().splitlines(keepends=True)[:2])
        assert "{{ fabstack_managed }}" in head, template


def test_set_values_are_read_as_yaml_scalars() -> None:
    assert parse_overrides(["a=8", "b=true", "c=x y", "d="]) == {"a": 8, "b": True, "c": "x y", "d": ""}
    assert "key=value" in error_of(lambda: parse_overrides(["novalue"]))


@pytest.mark.parametrize("env", sorted(p.stem for p in (REPO / "inventory").glob("*.yml")
                                       if not p.stem.endswith(".topology")))
def test_every_inventory_of_the_repo_loads_with_site_yml(env: str) -> None:
    # a group site.yml names but an env lacks (a new tier) is refused at load: each env must declare it, if empty
    assert load_env(REPO, env).inventory.hosts
