"""The vault reads and writes ansible-vault's own format: checked against the real ansible-vault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fabstack.engine import vault
from fabstack.engine.errors import FabstackError
from fabstack.engine.yamlfile import load_yaml

PASSWORD = "correct horse battery staple"
ANSIBLE_VAULT = str(Path(sys.executable).parent / "ansible-vault")


@pytest.fixture
def password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "vault-pass"
    path.write_text(PASSWORD + "\n")
    monkeypatch.delenv("FABSTACK_VAULT_PASSWORD", raising=False)
    monkeypatch.setenv("FABSTACK_VAULT_PASSWORD_FILE", str(path))
    return path


def ansible(*args: str) -> str:
    return subprocess.run([ANSIBLE_VAULT, *args], capture_output=True, text=True, check=True,
                          timeout=120).stdout


def test_ansible_vault_decrypts_what_we_encrypt(tmp_path: Path, password_file: Path) -> None:
    secret = tmp_path / "secrets.yml"
    secret.write_text(vault.encrypt("db_password: s3cret-value\n", PASSWORD.encode()))
    assert secret.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256\n")
    assert ansible("view", "--vault-password-file", str(password_file), str(secret)) == "db_password: s3cret-value\n"


def test_we_decrypt_what_ansible_vault_encrypts(tmp_path: Path, password_file: Path) -> None:
    secret = tmp_path / "group_vars.yml"
    secret.write_text("redis_app_password: from-ansible-1\n")
    ansible("encrypt", "--vault-password-file", str(password_file), str(secret))
    assert load_yaml(secret) == {"redis_app_password": "from-ansible-1"}
    assert "from-ansible-1" in vault.revealed()


def test_inline_vault_values_decrypt_and_are_masked(tmp_path: Path, password_file: Path) -> None:
    inline = ansible("encrypt_string", "--vault-password-file", str(password_file), "inline-secret-2",
                     "--name", "postgresql_app_password")
    path = tmp_path / "all.yml"
    path.write_text(f"plain: 1\n{inline}")
    assert load_yaml(path) == {"plain": 1, "postgresql_app_password": "inline-secret-2"}
    assert "inline-secret-2" in vault.revealed()


def test_missing_password_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FABSTACK_VAULT_PASSWORD", "FABSTACK_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_PASSWORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "secrets.yml"
    path.write_text(vault.encrypt("a: b\n", b"x"))
    with pytest.raises(FabstackError) as err:
        load_yaml(path)
    assert str(path) in err.value.line() and "no vault password" in err.value.line()


def test_wrong_password_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABSTACK_VAULT_PASSWORD", "wrong")
    path = tmp_path / "secrets.yml"
    path.write_text(vault.encrypt("a: b\n", PASSWORD.encode()))
    with pytest.raises(FabstackError) as err:
        load_yaml(path)
    assert str(path) in err.value.line() and "wrong vault password" in err.value.line()


def test_vault_tasks_round_trip_through_the_command_line(tmp_path: Path, password_file: Path) -> None:
    inv = str(Path(sys.executable).parent / "inv")
    repo = str(Path(__file__).resolve().parent.parent)
    path = tmp_path / "secrets.yml"
    path.write_text("pgbouncer_admin_password: cli-secret-3\n")
    env = {"FABSTACK_VAULT_PASSWORD_FILE": str(password_file), "PATH": "/usr/bin:/bin", "EDITOR": "sed -i s/3/4/"}
    run = lambda *a: subprocess.run([inv, "--search-root", repo, *a], capture_output=True, text=True, env=env,  # noqa: E731
                                   timeout=120)
    assert run("vault.encrypt", str(path)).returncode == 0
    assert "cli-secret-3" not in path.read_text() and path.stat().st_mode & 0o777 == 0o600
    assert run("vault.view", str(path)).stdout == "pgbouncer_admin_password: cli-secret-3\n"
    assert run("vault.edit", str(path)).returncode == 0
    assert run("vault.view", str(path)).stdout == "pgbouncer_admin_password: cli-secret-4\n"
    wrong = subprocess.run([inv, "--search-root", repo, "vault.view", str(path)], capture_output=True, text=True,
                           env={**env, "FABSTACK_VAULT_PASSWORD_FILE": "", "FABSTACK_VAULT_PASSWORD": "nope"},
                           timeout=120)
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1 and "wrong vault password" in wrong.stderr
    assert run("vault.decrypt", str(path)).returncode == 0
    assert path.read_text() == "pgbouncer_admin_password: cli-secret-4\n"


def test_inventory_shows_inline_vault_values_encrypted_never_in_clear(project_copy: Path, password_file: Path) -> None:
    import json

    from fabstack.cli import commands

    inline = ansible("encrypt_string", "--vault-password-file", str(password_file), "inline-secret-3",
                     "--name", "redis_app_password")
    with (project_copy / "group_vars" / "all.yml").open("a") as handle:
        handle.write("\n" + inline)
    listing = commands.inventory(project_copy, "sandbox", as_json=True)
    assert "inline-secret-3" not in listing
    shown = json.loads(listing)["_meta"]["hostvars"]["cache1"]["redis_app_password"]
    assert shown["__ansible_vault"].startswith("$ANSIBLE_VAULT;1.1;AES256")
    text = commands.inventory(project_copy, "sandbox")
    assert "inline-secret-3" not in text and "redis_app_password = '!vault (encrypted)'" in text
