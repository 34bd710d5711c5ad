"""The small leaks and careless inputs of the trust review, each one line or closed (docs/security.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from fabstack.cli import commands
from fabstack.engine import vault
from fabstack.engine.errors import FabstackError
from fabstack.engine.masking import Masker
from fabstack.engine.report import Event, write_json
from tests.test_cli import inv
from tests.test_report import sample


@pytest.mark.parametrize("name", ["..", ".hidden", "-oProxyCommand=x"])
def test_a_host_name_that_names_another_file_is_refused_before_reading_it(project_copy: Path, name: str) -> None:
    path = project_copy / "inventory" / "sandbox.yml"
    data = yaml.safe_load(path.read_text())
    data["all"]["children"]["lb"]["hosts"][name] = {"ansible_host": "10.9.9.9"}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(FabstackError) as caught:
        commands.inventory(project_copy, "sandbox")
    assert "invalid host name" in caught.value.line() and "inventory/sandbox.yml" in caught.value.line()


@pytest.mark.parametrize(("args", "words"), [
    (["deploy", "--check", "--forks", "lots"], "key --forks: must be a whole number from 1 to 1000, got 'lots'"),
    (["deploy", "--check", "--forks", "0"], "key --forks: must be a whole number from 1 to 1000, got 0"),
    (["release", "--check", "--max-fail", "x"], "key --max-fail: must be a whole number"),
])
def test_counts_on_the_command_line_are_one_line(args: list[str], words: str) -> None:
    proc = inv(*args)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("numprocs", ["lots", 0, True, 10**9])
def test_a_role_count_that_is_not_a_whole_number_is_one_line(project_copy: Path, numprocs: object) -> None:
    from fabstack.tiers.env import load_env

    project = load_env(project_copy, "sandbox")
    project.use_overrides({"supervisor_programs": [{"name": "w", "command": "sleep 1", "numprocs": numprocs}]})
    with pytest.raises(FabstackError) as caught:
        project.setup(project.inventory.select("workers")[0], None)
    assert caught.value.key == "supervisor_programs" and "numprocs" in caught.value.message


def test_an_empty_password_file_is_named_as_empty(tmp_path: Path) -> None:
    empty = tmp_path / "vault-pass"
    empty.write_text("\n")
    with pytest.raises(FabstackError) as caught:
        vault.use_password_file(str(empty))
    assert "the vault password file is empty" in caught.value.line() and str(empty) in caught.value.line()


def test_viewing_a_file_that_is_not_text_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABSTACK_VAULT_PASSWORD", "pw")
    binary = tmp_path / "secrets.yml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FabstackError) as caught:
        vault.view_file(binary)
    assert str(binary) in caught.value.line() and "not UTF-8" in caught.value.line()


def test_inventory_needs_no_site_yml(project_copy: Path) -> None:
    (project_copy / "site.yml").unlink()
    assert "lb1" in commands.inventory(project_copy, "sandbox")
    with pytest.raises(FabstackError, match="missing"):
        commands.deploy(project_copy, "sandbox", check=True)


def test_json_reports_hold_diffs_only_when_asked(tmp_path: Path) -> None:
    report = sample()
    report.events.append(Event("nginx", "file /etc/nginx/nginx.conf", "changed", diff="-old\n+new line"))
    for with_diffs in (False, True):
        path = tmp_path / f"r-{with_diffs}.json"
        write_json(path, [report], Masker(set()), {"env": "sandbox"}, with_diffs=with_diffs)
        assert ("+new line" in path.read_text()) is with_diffs


def test_secret_files_are_private_from_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file holding secrets is never, even for a moment, readable by others (no write-then-chmod)."""
    from fabstack.engine.privatefile import write_private

    modes = []
    real_open = os.open

    def spy(path: object, flags: int, mode: int = 0o777, *args: object, **kwargs: object) -> int:
        modes.append((flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    (tmp_path / ".verify.json.abc.tmp").symlink_to(tmp_path / "victim")
    write_private(tmp_path / "verify.json", json.dumps({"db_password": "x"}))
    assert modes and all(mode == 0o600 and flags & os.O_EXCL and flags & os.O_NOFOLLOW for flags, mode in modes)
    assert (tmp_path / "verify.json").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "victim").exists()
