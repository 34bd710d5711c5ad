"""testinfra checks of the backups role."""

import json
from typing import Any


def test_nightly_cron_and_script(host: Any, hostvars: dict[str, Any]) -> None:
    cron = host.file("/etc/cron.d/fabstack-backups").content_string
    assert f"{hostvars['backups_schedule']} root /usr/local/sbin/fabstack-backup scheduled" in cron
    assert host.file("/usr/local/sbin/fabstack-backup").mode == 0o755
    assert host.service("cron").is_running


def test_a_scheduled_run_on_the_primary_writes_a_checked_backup(host: Any, hostvars: dict[str, Any]) -> None:
    host.check_output("/usr/local/sbin/fabstack-backup scheduled")  # what cron runs: on the primary, a backup
    newest = json.loads(host.check_output("/usr/local/sbin/fabstack-backup list").splitlines()[0])
    assert newest["good"]
    folder = f"{hostvars['backups_dir']}/{newest['name']}"
    for database in hostvars["postgresql_databases"]:
        assert host.file(f"{folder}/{database}.dump").size > 0
    assert host.file(f"{folder}/globals.sql").exists
    assert host.run(f"cd {folder} && sha256sum -c SHA256SUMS").rc == 0
