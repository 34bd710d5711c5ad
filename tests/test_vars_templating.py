"""Ansible-style ``{{ }}`` in variable values: rendered on this machine in a sandbox, typed like Ansible's,
refused with one line naming file, key and host when they cannot render (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabstack.errors import FabstackError
from fabstack.project import load_project


def add_vars(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write("\n" + text)


def host_vars(root: Path, host: str) -> dict:
    return load_project(root, "sandbox").setup(host, None).vars


def template_error(root: Path, host: str) -> FabstackError:
    with pytest.raises(FabstackError) as caught:
        load_project(root, "sandbox").setup(host, None)
    return caught.value


def test_a_whole_expression_keeps_its_type_and_passes_the_type_check(project_copy: Path) -> None:
    add_vars(project_copy, "group_vars/lb.yml", 'nginx_keepalive_timeout: "{{ 30 + 35 }}"\n')
    assert host_vars(project_copy, "lb1")["nginx_keepalive_timeout"] == 65


def test_values_compose_from_other_variables_hostvars_and_groups(project_copy: Path) -> None:
    (project_copy / "inventory/sandbox.topology.yml").unlink(missing_ok=True)  # db1 primary, as the inventory says
    add_vars(project_copy, "group_vars/all.yml",
             'site_note: "primary {{ hostvars[groups.db_primary[0]].ansible_host }} port {{ db_port }}"\n'
             'db_port: "{{ base_port }}"\nbase_port: 5432\n')
    assert host_vars(project_copy, "lb1")["site_note"] == "primary 10.213.0.31 port 5432"


def test_unsafe_values_are_kept_literally(project_copy: Path) -> None:
    add_vars(project_copy, "group_vars/lb.yml", 'banner: !unsafe "{{ not a template }}"\n')
    assert host_vars(project_copy, "lb1")["banner"] == "{{ not a template }}"


def test_an_undefined_name_is_one_line_naming_file_key_and_host(project_copy: Path) -> None:
    add_vars(project_copy, "group_vars/lb.yml", 'nginx_keepalive_timeout: "{{ no_such_var + 1 }}"\n')
    line = template_error(project_copy, "lb1").line()
    assert "group_vars/lb.yml" in line and "nginx_keepalive_timeout" in line and "lb1" in line
    assert "no_such_var" in line and "\n" not in line


def test_values_that_refer_to_each_other_are_a_loop(project_copy: Path) -> None:
    add_vars(project_copy, "host_vars/lb1.yml", 'left: "{{ right }}"\nright: "{{ left }}"\n')
    line = template_error(project_copy, "lb1").line()
    assert "loop" in line and "left" in line and "host_vars/lb1.yml" in line


def test_hosts_that_refer_to_each_other_are_a_loop(project_copy: Path) -> None:
    add_vars(project_copy, "host_vars/lb1.yml", "x: \"{{ hostvars['app1'].y }}\"\n")
    add_vars(project_copy, "host_vars/app1.yml", "y: \"{{ hostvars['lb1'].x }}\"\n")
    assert "across hosts" in template_error(project_copy, "lb1").line()


def test_the_sandbox_refuses_python_internals(project_copy: Path) -> None:
    add_vars(project_copy, "group_vars/lb.yml", "sneaky: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n")
    line = template_error(project_copy, "lb1").line()
    assert "sneaky" in line and "cannot template" in line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40))
def test_any_expression_renders_or_is_one_clear_line(project_copy: Path, text: str) -> None:
    project = load_project(project_copy, "sandbox")
    project.overrides = {"probe_value": "{{ " + text + " }}"}
    try:
        project.setup("lb1", None)
    except FabstackError as exc:
        line = exc.line()
        assert "probe_value" in line and "lb1" in line and "\n" not in line
