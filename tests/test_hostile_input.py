"""Hostile or careless input (docs/bad-input.md, "hostile input"): every class is one short line naming the file,
key and host, raised before any host is touched, with nothing written in the deployment repo (no network: a
connection attempt fails these tests)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from fabstack.cli import commands
from fabstack.engine.errors import MAX_LINE, FabstackError

pytestmark = pytest.mark.usefixtures("no_host_reachable")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the repo with its content (to prove nothing was written)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(root: Path, run: Callable[[], object]) -> str:
    """The one line a refused command gives; asserts it wrote nothing anywhere in the repo."""
    before = snapshot(root)
    with pytest.raises(FabstackError) as caught:
        run()
    line = caught.value.line()
    assert "\n" not in line and len(line) <= MAX_LINE + 40
    assert snapshot(root) == before, "a refused command wrote files"
    return line


def deploy(root: Path, **kwargs: object) -> Callable[[], object]:
    return lambda: commands.deploy(root, str(kwargs.pop("env", "sandbox")), check=True, **kwargs)  # type: ignore[arg-type]


def set_host(root: Path, host_group: tuple[str, ...], host: str, **values: object) -> None:
    """Change one host's inventory entry (``host_group`` is the path of child groups to it)."""
    path = root / "inventory" / "sandbox.yml"
    data = yaml.safe_load(path.read_text())
    group = data["all"]
    for name in host_group:
        group = group["children"][name]
    group["hosts"][host].update(values)
    path.write_text(yaml.safe_dump(data))


LB = ("lb",)
APP2 = ("app",)


@pytest.mark.parametrize("env", ["../inventory/sandbox", "/etc/passwd", "a/b", "..", ".hidden", "x" * 200, "sand box"])
def test_an_env_that_is_not_a_plain_name_is_refused(project_copy: Path, env: str) -> None:
    line = refused(project_copy, deploy(project_copy, env=env))
    assert "key --env" in line and "plain name" in line
    assert not (project_copy / ".fabstack" / "secrets").exists()


@pytest.mark.parametrize(("host_group", "values", "key", "text"), [
    (LB, {"ansible_port": 70000}, "ansible_port", "1 to 65535"),
    (LB, {"ansible_port": "22; rm -rf /"}, "ansible_port", "1 to 65535"),
    (LB, {"ansible_port": True}, "ansible_port", "1 to 65535"),
    (LB, {"ansible_host": "10.0.0.1 -oProxyCommand=x"}, "ansible_host", "not a host name or an IP"),
    (LB, {"ansible_host": "-oProxyCommand=evil"}, "ansible_host", "not a host name or an IP"),
    (LB, {"ansible_host": "999.1.1.1"}, "ansible_host", "not a host name or an IP"),
    (LB, {"ansible_become": "yes please"}, "ansible_become", "true or false"),
    (LB, {"ansible_ssh_private_key_file": "no/such/key"}, "ansible_ssh_private_key_file", "no private key file"),
    (APP2, {"ansible_host": "10.213.0.021"}, "ansible_host", "not a host name or an IP"),
    (LB, {"ansible_user": "deploy\n  ProxyCommand sh -c 'id>/tmp/x'"}, "ansible_user", "not a user name"),
    (LB, {"ansible_user": "-oProxyCommand=x"}, "ansible_user", "not a user name"),
    (LB, {"ansible_user": "root%h"}, "ansible_user", "not a user name"),
    (LB, {"ansible_ssh_private_key_file": "k\n  ProxyCommand x"}, "ansible_ssh_private_key_file", "plain file"),
    (APP2, {"ansible_host": "::ffff:10.213.0.21"}, "", ""),  # another spelling, another address: accepted
])
def test_connection_settings_are_checked(project_copy: Path, host_group: tuple[str, ...], values: dict,
                                         key: str, text: str) -> None:
    set_host(project_copy, host_group, "lb1" if host_group == LB else "app2", **values)
    if not key:
        return
    line = refused(project_copy, deploy(project_copy))
    assert f"key {key}" in line and text in line and "inventory/sandbox.yml" in line


def test_two_hosts_at_one_address_however_spelled(project_copy: Path) -> None:
    set_host(project_copy, LB, "lb1", ansible_host="APP1.example.")
    set_host(project_copy, APP2, "app2", ansible_host="app1.example")
    line = refused(project_copy, deploy(project_copy))
    assert "address app1.example:22 is also host" in line and "lb1" in line and "app2" in line


@pytest.mark.parametrize(("content", "text"), [
    (b"nginx_worker_connections: 1\nnginx_worker_connections: 2\n", "duplicate key (first on line 1)"),
    (b"banner: \xff\xfe\n", "not UTF-8 text (byte 0xff at offset 8)"),
    (b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
     "expands to more than"),
    (b"deep: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested"),
    (b"x: " + b"y" * 5000 + b": z\n", "malformed YAML"),
])
def test_hostile_yaml_is_one_line(project_copy: Path, content: bytes, text: str) -> None:
    (project_copy / "group_vars" / "lb.yml").write_bytes(content)
    line = refused(project_copy, deploy(project_copy))
    assert text in line and "group_vars/lb.yml" in line


def test_a_huge_value_is_cut_in_the_message(project_copy: Path) -> None:
    line = refused(project_copy, deploy(project_copy, overrides=[f"nginx_worker_connections={'9' * 5000}x"]))
    assert "characters)" in line and len(line) < MAX_LINE + 40


@pytest.mark.parametrize("expression", [
    "{{ 'x' * 10**9 }}", "{{ 10**10**10 }}", "{{ 'x'|center(10**9) }}", "{{ lipsum(10**6) }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% set a = 'x' * 999999 %}{{ a ~ a ~ a }}", "{% for i in range(999999) %}{{ 'x' * 999 }}{% endfor %}",
])
def test_templated_values_are_bounded_in_time_and_size(project_copy: Path, expression: str) -> None:
    (project_copy / "group_vars" / "lb.yml").write_text(yaml.safe_dump({"banner": expression}))
    line = refused(project_copy, deploy(project_copy))
    assert "cannot template the value" in line and "key banner" in line and "host lb1" in line


@pytest.mark.parametrize(("option", "value", "text"), [
    ("limit", "", "names no host or group"), ("limit", ",,:", "names no host or group"),
    ("limit", "lb1,&db", "selects no host"), ("limit", "!all", "selects no host"),
    ("roles", "", "names no role"), ("roles", " , ,", "names no role"),
])
def test_a_selection_that_selects_nothing_is_an_error(project_copy: Path, option: str, value: str, text: str) -> None:
    line = refused(project_copy, deploy(project_copy, **{option: value}))
    assert f"key --{option}" in line and text in line


def test_roles_no_selected_host_carries(project_copy: Path) -> None:
    line = refused(project_copy, deploy(project_copy, limit="lb1", roles="postgresql"))
    assert "no selected host carries role postgresql" in line


def test_a_set_of_an_unknown_key_is_refused_with_a_hint(project_copy: Path) -> None:
    line = refused(project_copy, deploy(project_copy, overrides=["nginx_worker_conections=10"]))
    assert "key --set nginx_worker_conections" in line and "did you mean nginx_worker_connections" in line


def test_a_play_with_an_unknown_key(project_copy: Path) -> None:
    plays = len(yaml.safe_load((project_copy / "site.yml").read_text()))
    with (project_copy / "site.yml").open("a") as site:
        site.write("- hosts: lb\n  roles: [nginx]\n  become_user: postgres\n")
    line = refused(project_copy, deploy(project_copy))
    assert "site.yml" in line and f"key [{plays}].become_user" in line and "unknown play key" in line


def test_a_group_that_is_its_own_child(project_copy: Path) -> None:
    path = project_copy / "inventory" / "sandbox.yml"
    data = yaml.safe_load(path.read_text())
    data["all"]["children"]["cache"]["children"] = {"cache": None}
    path.write_text(yaml.safe_dump(data))
    line = refused(project_copy, deploy(project_copy))
    assert "own child" in line and "key cache.children" in line


def test_a_host_listed_twice_in_one_group(project_copy: Path) -> None:
    path = project_copy / "inventory" / "sandbox.yml"
    path.write_text(path.read_text().replace("    cache:\n      hosts:\n        cache1:",
                                             "    cache:\n      hosts:\n        cache1:\n        cache1:", 1))
    line = refused(project_copy, deploy(project_copy))
    assert "duplicate key" in line and "inventory/sandbox.yml" in line


@pytest.mark.parametrize("kind", ["loop", "dangling", "fifo", "folder loop"])
def test_vars_files_that_are_not_plain_files_are_errors(project_copy: Path, kind: str) -> None:
    (project_copy / "host_vars").mkdir(exist_ok=True)
    target = project_copy / "host_vars" / "lb1.yml"
    if kind == "loop":
        target.symlink_to(project_copy / "host_vars" / "lb1.yml")
    elif kind == "dangling":
        target.symlink_to(project_copy / "nowhere.yml")
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        folder = project_copy / "host_vars" / "lb1"
        folder.mkdir()
        (folder / "again").symlink_to(folder)
    line = refused(project_copy, deploy(project_copy))
    assert "host_vars/lb1" in line


@pytest.mark.parametrize(("facts", "key"), [
    ({"cpus": "many"}, "fabstack_facts.cpus"), ({"memory_mb": -5}, "fabstack_facts.memory_mb"),
    ({"cpus": True}, "fabstack_facts.cpus"), ({"gpus": 8}, "fabstack_facts.gpus"),
])
def test_fact_overrides_of_the_wrong_type(project_copy: Path, facts: dict, key: str) -> None:
    set_host(project_copy, LB, "lb1", fabstack_facts=facts)
    line = refused(project_copy, deploy(project_copy))
    assert f"key {key}" in line and "host lb1" in line


@pytest.mark.parametrize("value", ["nginx_worker_connections=100000000", "pgbouncer_default_pool_size=50000",
                                   "php_fpm_max_children=1000000"])
def test_numbers_without_a_sane_upper_bound(project_copy: Path, value: str) -> None:
    line = refused(project_copy, deploy(project_copy, overrides=[value]))
    assert f"key {value.split('=')[0]}" in line and "at most" in line


def test_a_json_path_that_cannot_be_written(project_copy: Path, tmp_path: Path) -> None:
    line = refused(project_copy, deploy(project_copy, json_path=str(tmp_path / "no" / "such" / "dir" / "r.json")))
    assert "key --json" in line and "cannot write" in line


def test_day2_commands_check_the_fleet_before_connecting(project_copy: Path) -> None:
    from fabstack.day2.failover import run_action

    set_host(project_copy, APP2, "app2", ansible_host="10.213.0.21")
    line = refused(project_copy, lambda: run_action(project_copy, "sandbox", "status"))
    assert "is also host app1's" in line
    set_host(project_copy, APP2, "app2", ansible_host="10.213.0.22")
    line = refused(project_copy, lambda: run_action(project_copy, "sandbox", "promote-replica", replica="db9"))
    assert "key --replica" in line and "db9 is not a db host" in line


def test_a_set_of_a_generated_secret_is_known(project_copy: Path) -> None:
    from fabstack.tiers.env import load_env

    project = load_env(project_copy, "sandbox")
    project.set_overrides(["redis_app_password=Team-Value-1"])
    assert project.setup("cache1", None).vars["redis_app_password"] == "Team-Value-1"


@pytest.mark.parametrize("user", ["deploy\n  ProxyCommand sh -c 'id>/tmp/x'", "a b", 'x"y'])
def test_verify_makes_the_same_checks_before_writing_an_ssh_config(project_copy: Path, user: str) -> None:
    """``inv verify`` hands an ssh config to testinfra: a value that could add an option is refused first."""
    from fabstack.day2.verify import verify

    set_host(project_copy, LB, "lb1", ansible_user=user)
    line = refused(project_copy, lambda: verify(project_copy, "sandbox"))
    assert "key ansible_user" in line
    assert not (project_copy / ".fabstack" / "ssh").exists()
