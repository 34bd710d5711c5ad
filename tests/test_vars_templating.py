"""Ansible-style ``{{ }}`` in variable values: rendered on this machine in a sandbox, typed like Ansible's,
refused with one line naming file, key and host when they cannot render (no network)."""

from __future__ import annotations

import threading
from pathlib import Path

import jinja2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fabstack.engine.errors import FabstackError
from fabstack.tiers.env import load_env


def add_vars(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write("\n" + text)


def host_vars(root: Path, host: str) -> dict:
    return load_env(root, "sandbox").setup(host, None).vars


def template_error(root: Path, host: str) -> FabstackError:
    with pytest.raises(FabstackError) as caught:
        load_env(root, "sandbox").setup(host, None)
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


def test_hosts_planned_at_once_resolving_one_host_are_no_loop(project_copy: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts are planned in threads: a host another thread asks for while this one works it out is no cycle, and
    it is worked out once (the other thread waits for it and takes the same values)."""
    from fabstack.engine import project as project_module

    project = load_env(project_copy, "sandbox")
    real = project_module.template_vars
    others: list[threading.Thread] = []
    seen: dict[str, dict] = {}

    def resolve_again_meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not others:  # while db1 is being templated here, another thread asks for db1 too
            others.append(threading.Thread(target=lambda: seen.setdefault("other", project.resolve("db1").values)))
            others[0].start()
        return real(*args, **kwargs)

    monkeypatch.setattr(project_module, "template_vars", resolve_again_meanwhile)
    values = project.resolve("db1").values
    others[0].join(timeout=60)
    assert seen["other"]["postgresql_etc"] == values["postgresql_etc"] == "/etc/postgresql/15/main"
    assert project.resolves["db1"] == 1


def test_the_sandbox_refuses_python_internals(project_copy: Path) -> None:
    add_vars(project_copy, "group_vars/lb.yml", "sneaky: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n")
    line = template_error(project_copy, "lb1").line()
    assert "sneaky" in line and "cannot template" in line


def independent_render(text: str, context: dict) -> object:
    """What Jinja2's own sandbox makes of ``{{ text }}`` with these variables (an oracle outside fabstack)."""
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = "{{ " + text + " }}"
    try:
        return env.compile_expression(text, undefined_to_none=False)(**context)
    except jinja2.TemplateError:
        return env.from_string(template).render(**context)  # not one expression: rendered as text


# Arbitrary text (mostly refused) and well-formed expressions over the host's real variables (mostly rendered).
ATOMS = st.integers(-1000, 1000).map(str) | st.sampled_from(
    ["ansible_host", "nginx_keepalive_timeout", "'x'", "[1, 2]", "groups.lb", "hostvars['app1'].ansible_host",
     "none_such", "0.5", "true"])
EXPRESSIONS = st.recursive(ATOMS, lambda inner: (
    st.tuples(inner, st.sampled_from([" + ", " ~ ", " // ", " - ", " == ", " if true else "]), inner)
    .map("".join) | inner.map(lambda e: f"({e})") | inner.map(lambda e: f"{e} | string")), max_leaves=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=40) | EXPRESSIONS | EXPRESSIONS.map(lambda e: e + " }} and {{ " + e))
@example("30 + 35")
@example("1 }} and {{ 2")
def test_any_expression_renders_or_is_one_clear_line(project_copy: Path, text: str) -> None:
    project = load_env(project_copy, "sandbox")
    project.overrides = {"probe_value": "{{ " + text + " }}"}
    try:
        values = project.setup("lb1", None).vars
    except FabstackError as exc:
        line = exc.line()
        # --set gives every host the value: reading hostvars['app1'] renders app1's too, and names app1
        assert "probe_value" in line and "\n" not in line
        assert any(f"host {name}" in line for name in project.inventory.hosts), line
        return
    plain = load_env(project_copy, "sandbox")  # the other hosts' values, without the probe
    context = {k: v for k, v in values.items() if k != "probe_value"}
    context |= {"groups": plain.groups(), "hostvars": plain.hostvars()}
    try:
        expected = independent_render(text, context)
    except Exception as exc:  # noqa: BLE001 - what fabstack accepted, Jinja2 itself must accept
        raise AssertionError(f"fabstack rendered {text!r} that Jinja2 refuses: {exc}") from exc
    assert values["probe_value"] == expected or repr(values["probe_value"]) == repr(expected), text
