"""Inventory parsing and variable precedence, compared with Ansible's own ansible-inventory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fabstack.engine.errors import FabstackError
from fabstack.engine.inventory import load_inventory

NESTED = Path(__file__).parent / "fixtures" / "nested"


def ansible_inventory(root: Path, env: str) -> dict:
    exe = Path(sys.executable).parent / "ansible-inventory"
    if not exe.exists():
        exe = Path(shutil.which("ansible-inventory") or "ansible-inventory")
    out = subprocess.run(
        [str(exe), "-i", str(root / "inventory" / f"{env}.yml"), "--playbook-dir", str(root), "--list"],
        capture_output=True, text=True, check=True, env={"ANSIBLE_NOCOLOR": "1", "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    return json.loads(out.stdout)


def test_hostvars_match_ansible_inventory_on_nested_inventory() -> None:
    ours = load_inventory(NESTED, "test").as_ansible_list()
    theirs = ansible_inventory(NESTED, "test")
    assert ours["_meta"]["hostvars"] == theirs["_meta"]["hostvars"]
    # the fixture really exercises precedence: these values only come out right in Ansible's order
    assert ours["_meta"]["hostvars"]["app2"]["sibling"] == "gv_api"
    assert ours["_meta"]["hostvars"]["app1"]["layer"] == "hv_app1"
    assert ours["_meta"]["hostvars"]["app1"]["order_probe"] == "gv_all"


def test_group_membership_matches_ansible_inventory() -> None:
    ours = load_inventory(NESTED, "test").as_ansible_list()
    theirs = ansible_inventory(NESTED, "test")
    for group, entry in theirs.items():
        if group == "_meta":
            continue
        assert sorted(ours[group].get("hosts", [])) == sorted(entry.get("hosts", [])), group
        assert sorted(ours[group].get("children", [])) == sorted(entry.get("children", [])), group


def test_group_order_is_depth_then_priority_then_name() -> None:
    inv = load_inventory(NESTED, "test")
    assert [g.name for g in inv.host_groups("app2")] == ["all", "web", "zeta", "php", "api"]


def test_set_overrides_everything() -> None:
    inv = load_inventory(NESTED, "test")
    resolved = inv.resolve("app1", {"layer": "default", "fresh": 1}, {"layer": "cli"})
    assert resolved.values["layer"] == "cli"
    assert resolved.values["fresh"] == 1
    assert resolved.origin("layer") == "--set"


def test_origin_names_the_file_that_won() -> None:
    resolved = load_inventory(NESTED, "test").resolve("app1")
    assert resolved.origin("web_file").endswith("group_vars/web/zz.yml")
    assert resolved.origin("layer").endswith("host_vars/app1.yml")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("web", ["app1", "app2"]),
        ("app*", ["app1", "app2"]),
        ("web,!api", ["app1"]),
        ("all,&db", ["db1"]),
        ("loner,db1", ["loner", "db1"]),
    ],
)
def test_limit_patterns(pattern: str, expected: list[str]) -> None:
    assert load_inventory(NESTED, "test").select(pattern) == expected


def test_unknown_limit_names_the_pattern() -> None:
    with pytest.raises(FabstackError) as err:
        load_inventory(NESTED, "test").select("web,nosuchhost")
    assert "nosuchhost" in err.value.line() and "--limit" in err.value.line()


def test_unknown_env_lists_known_ones() -> None:
    with pytest.raises(FabstackError) as err:
        load_inventory(NESTED, "prod")
    assert "unknown env 'prod'" in err.value.line()
    assert "test" in err.value.line()


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "bad.yml").write_text("all:\n  hosts:\n    a: {ansible_host: 1\n    b:\n")
    with pytest.raises(FabstackError) as err:
        load_inventory(tmp_path, "bad")
    assert "inventory/bad.yml:" in err.value.line() and "malformed YAML" in err.value.line()


def test_malformed_group_vars_names_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(NESTED, tmp_path / "repo")
    (tmp_path / "repo" / "group_vars" / "php.yml").write_text("ok: 1\nbroken: [1, 2\n")
    inv = load_inventory(tmp_path / "repo", "test")
    with pytest.raises(FabstackError) as err:
        inv.resolve("app1")
    assert "group_vars/php.yml:" in err.value.line()


def test_repo_sandbox_inventory_matches_ansible_inventory(project_copy: Path) -> None:
    repo = project_copy
    (repo / "inventory" / "sandbox.topology.yml").unlink(missing_ok=True)  # the inventory as written
    ours = load_inventory(repo, "sandbox").as_ansible_list()
    theirs = ansible_inventory(repo, "sandbox")
    assert ours["_meta"]["hostvars"] == theirs["_meta"]["hostvars"]
    assert ours["all"]["children"] == theirs["all"]["children"]


def test_a_group_of_another_env_matches_no_host_and_a_typo_is_still_refused(project_copy: Path) -> None:
    sandbox = load_inventory(project_copy, "sandbox")
    assert "mariadb_primary" in sandbox.elsewhere  # inventory/mariadb.yml declares it
    assert sandbox.select("mariadb_primary") == []
    assert sandbox.select("db,mariadb_replica") == sandbox.select("db")
    with pytest.raises(FabstackError, match="unknown host or group 'mariadb_primray'"):
        sandbox.select("mariadb_primray")
    assert "db_primary" in load_inventory(project_copy, "mariadb").elsewhere
