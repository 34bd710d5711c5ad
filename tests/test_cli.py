"""The command line as a user types it: `inv ...` through Invoke, exit statuses and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

INV = str(Path(sys.executable).parent / "inv")


def inv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([INV, "--search-root", str(REPO), *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120)


def test_inventory_json_is_ansible_inventory_list_shaped(project_copy: Path) -> None:
    (project_copy / "inventory" / "sandbox.topology.yml").unlink(missing_ok=True)  # the inventory as written
    proc = inv("inventory", "--env", "sandbox", "--json", "--root", str(project_copy))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["_meta"]["hostvars"]["lb1"]["ansible_host"] == "10.213.0.11"
    assert data["db"]["children"] == ["db_primary", "db_replica"]
    assert data["all"]["children"][0] == "ungrouped"


def test_inventory_text_lists_groups_per_host(project_copy: Path) -> None:
    (project_copy / "inventory" / "sandbox.topology.yml").unlink(missing_ok=True)  # the inventory as written
    proc = inv("inventory", "--root", str(project_copy))
    assert "db1  groups: db, db_primary" in proc.stdout


def test_unknown_env_is_one_line_and_exit_2() -> None:
    proc = inv("deploy", "--env", "prod")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown env 'prod'" in proc.stderr and "key --env" in proc.stderr


def test_root_option_reads_another_deployment_repo(project_copy: Path) -> None:
    (project_copy / "inventory" / "staging.yml").write_text("all:\n  hosts:\n    web9: {ansible_host: 10.9.9.9}\n")
    proc = inv("inventory", "--env", "staging", "--root", str(project_copy), cwd=project_copy)
    assert proc.returncode == 0, proc.stderr
    assert "web9" in proc.stdout and "ansible_host = '10.9.9.9'" in proc.stdout


def test_an_env_shaped_like_a_path_is_exit_2_one_line_and_writes_nothing(project_copy: Path) -> None:
    before = sorted(str(p) for p in project_copy.rglob("*"))
    for env in ("../inventory/sandbox", "/tmp/x"):
        proc = inv("deploy", "--env", env, "--check", "--root", str(project_copy))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "key --env" in proc.stderr
    assert sorted(str(p) for p in project_copy.rglob("*")) == before


def test_an_unexpected_error_is_one_line_with_a_hint() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys; from fabstack.cli import commands; "
                           "commands.report_unexpected(KeyError('boom'), sys.argv[1:])"],
                          capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip() == ("error: internal error: KeyError: 'boom' (this is a fabstack bug; run again with "
                                   "-v or FABSTACK_TRACEBACK=1 for the traceback)")
    shown = subprocess.run([sys.executable, "-c", "import sys; from fabstack.cli import commands; "
                            "commands.report_unexpected(KeyError('boom'), ['-v'])"],
                           capture_output=True, text=True, timeout=60)
    assert shown.stderr.splitlines()[0] == "KeyError: 'boom'"  # the exception as Python shows it, then the line
