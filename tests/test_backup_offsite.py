"""The backups' offsite copy, planned offline in the MariaDB env: the primary copies each backup to the store with
its own key and the store's recorded host key; the store admits that key from the tier's addresses only, forced
into an append-only rrsync, with its keys out of reach of what arrives; an env without a store copies nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabstack.engine import operations as ops
from tests.test_roles_declare import SMALL, Declared, add_to_group, declared_for, find, refusal


def operations(declared: Declared, host: str, role: str) -> dict[str, ops.Operation]:
    return {op.id: op for name, op in declared[host] if name == role}


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Declared:
    from tests.conftest import copy_project

    return declared_for(copy_project(tmp_path_factory.mktemp("offsite") / "repo"), SMALL, env="mariadb")


def test_the_primary_copies_to_the_store_trusting_its_recorded_key_alone(declared: Declared) -> None:
    backups = operations(declared, "mdb1", "backups")
    settings = json.loads(backups["file /etc/fabstack/backup.json"].content)  # type: ignore[attr-defined]
    offsite = settings["offsite"]
    assert (offsite["address"], offsite["user"]) == ("10.216.0.41", "fabstack-offsite")
    assert "StrictHostKeyChecking=yes" in offsite["options"] and "IdentitiesOnly=yes" in offsite["options"]
    key = backups["file /etc/fabstack/offsite/id_ed25519"]
    assert key.secret and key.desired()["mode"] == "0600"  # type: ignore[attr-defined]
    assert find(declared, "mdb1", "backups", "file /etc/fabstack/offsite/known_hosts").count("10.216.0.41 ") == 1


def test_the_store_admits_the_tier_append_only_and_keeps_its_keys_apart(declared: Declared) -> None:
    store = operations(declared, "mbackup1", "backup_store")
    line = store["file /var/lib/fabstack-offsite/.ssh/authorized_keys"]
    text = line.content.decode()  # type: ignore[attr-defined]
    assert text.startswith('from="10.216.0.11,10.216.0.12,10.216.0.13",restrict,command="/usr/bin/rrsync -wo '
                           '-no-del -no-overwrite /var/backups/offsite" ssh-ed25519 ')
    # root's: nothing that arrives through rrsync (confined to /var/backups/offsite) can become a key sshd reads
    assert line.desired()["owner"] == "root"  # type: ignore[attr-defined]
    assert store["directory /var/lib/fabstack-offsite/.ssh"].desired()["owner"] == "root"  # type: ignore[attr-defined]


def test_an_env_without_a_store_copies_nothing(tmp_path: Path) -> None:
    from tests.conftest import copy_project

    sandbox = declared_for(copy_project(tmp_path / "repo"), SMALL)
    settings = json.loads(operations(sandbox, "db1", "backups")["file /etc/fabstack/backup.json"]
                          .content)  # type: ignore[attr-defined]
    assert "offsite" not in settings
    assert not [op for op in operations(sandbox, "db1", "backups") if "offsite" in op]


def test_an_offsite_group_without_its_one_host_is_refused(project_copy: Path) -> None:
    add_to_group(project_copy, "mariadb", "backup_store", "mlb1")
    refused = refusal(project_copy, "mariadb")
    assert refused.key == "backups_offsite_group" and "has 2" in refused.message
