"""testinfra checks of the backup_store role: the copies' folder is the store account's alone, and the key that
senders use can only run the append-only rrsync, from the tier's addresses, in a file the account cannot edit."""

from typing import Any


def test_the_copies_are_the_store_accounts_alone(host: Any, hostvars: dict[str, Any]) -> None:
    folder = host.file(hostvars["backup_store_dir"])
    assert (folder.user, folder.mode) == (hostvars["backup_store_user"], 0o700)


def test_the_senders_key_runs_only_append_only_rrsync(host: Any, hostvars: dict[str, Any]) -> None:
    keys = host.file(f"/var/lib/{hostvars['backup_store_user']}/.ssh/authorized_keys")
    assert (keys.user, keys.mode) == ("root", 0o644)
    lines = [line for line in keys.content_string.splitlines() if line and not line.startswith("#")]
    assert lines and all(",restrict,command=\"/usr/bin/rrsync -wo -no-del -no-overwrite " in line for line in lines)
    assert host.file("/usr/bin/rrsync").exists
