"""testinfra checks of the backups role."""

import json
from typing import Any

import pytest

SETTINGS = "/etc/fabstack/backup.json"


def test_nightly_cron_and_script(host: Any, hostvars: dict[str, Any]) -> None:
    cron = host.file("/etc/cron.d/fabstack-backups").content_string
    assert f"{hostvars['backups_schedule']} root /usr/local/sbin/fabstack-backup scheduled" in cron
    assert host.file("/usr/local/sbin/fabstack-backup").mode == 0o755
    assert host.service("cron").is_running


def test_a_scheduled_run_on_the_primary_writes_a_checked_backup(host: Any) -> None:
    settings = json.loads(host.file(SETTINGS).content_string)
    host.check_output("/usr/local/sbin/fabstack-backup scheduled")  # what cron runs: on the primary, a backup
    newest = json.loads(host.check_output("/usr/local/sbin/fabstack-backup list").splitlines()[0])
    assert newest["good"]
    folder = f"{settings['dir']}/{newest['name']}"
    dump = ".sql" if settings["engine"] == "mariadb" else ".dump"
    for database in settings["databases"]:
        assert host.file(f"{folder}/{database}{dump}").size > 0
    assert host.file(f"{folder}/{'positions.json' if settings['engine'] == 'mariadb' else 'globals.sql'}").exists
    assert host.run(f"cd {folder} && sha256sum -c SHA256SUMS").rc == 0


def test_mariadb_binary_logs_are_archived_with_their_checksums(host: Any, hostvars: dict[str, Any]) -> None:
    settings = json.loads(host.file(SETTINGS).content_string)
    if settings["engine"] != "mariadb":
        pytest.skip("PostgreSQL's backups are whole dumps: no binary logs")
    every = hostvars["backups_binlog_minutes"]
    cron = host.file("/etc/cron.d/fabstack-binlogs").content_string
    assert f"*/{every} * * * * root /usr/local/sbin/fabstack-backup archive-binlogs" in cron
    host.check_output("mariadb -e 'create database if not exists app; create table if not exists "
                      "app.fabstack_archive_probe (id int); drop table app.fabstack_archive_probe'")
    host.check_output("/usr/local/sbin/fabstack-backup archive-binlogs")
    archive = f"{settings['dir']}/binlogs"
    sums = host.check_output(f"ls {archive}/*.sha256").split()
    assert sums
    assert host.run(f"cd {archive} && cat *.sha256 | sha256sum -c").rc == 0
