"""``inv backup.*``: run, list, restore and verify the backups the backups role takes, for either db tier (the
backup host's settings say which); on MariaDB a restore can stop at a chosen second (``--until``)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.engine.project import Project
from fabstack.engine.remote import RemoteHost, reach
from fabstack.engine.runner import select_hosts
from fabstack.tiers.env import load_env

SCRIPT = "/usr/local/sbin/fabstack-backup"
_NAME = re.compile(r"^\d{8}T\d{6}Z$")
_DB = re.compile(r"^[a-z_][a-z0-9_]*$")


def plain_database(name: str, source: str) -> str:
    """``name`` if it is a plain database name; read from a host (a file a service account can write), anything
    else is refused rather than put into a command."""
    if not isinstance(name, str) or not _DB.match(name):
        raise FabstackError(f"not a plain database name: {name!r}", key=source)
    return name


@dataclass
class Backups:
    """The env's backup host and the commands run on it."""

    project: Project
    host: RemoteHost
    out: Callable[[str], None]

    @property
    def settings(self) -> dict:
        """The env's settings for the backup host."""
        return self.host.setup.vars

    @cached_property
    def on_host(self) -> dict:
        """What the backups role wrote on the host: ``engine``, ``dir``, ``databases``."""
        return dict(json.loads(self.host.run("cat /etc/fabstack/backup.json")))

    @property
    def mariadb(self) -> bool:
        """Whether the backups are MariaDB's."""
        return self.on_host.get("engine") == "mariadb"

    def folder(self, name: str) -> str:
        """Where a backup lives on the backup host."""
        return f"{self.on_host['dir']}/{name}"

    def databases(self, name: str) -> list[str]:
        """The databases a backup holds."""
        suffix = ".sql" if self.mariadb else ".dump"
        listed = self.host.run(f"ls {shlex.quote(self.folder(name))}").split()
        return [plain_database(f.removesuffix(suffix), f"backup {name}") for f in listed if f.endswith(suffix)]

    def existing(self, host: RemoteHost) -> set[str]:
        """The databases on a host's server."""
        if self.mariadb:
            return set(host.mariadb("show databases").split())
        return set(host.sql("select datname from pg_database").split())

    def load(self, name: str, database: str, scratch: str, until: str | None = None) -> None:
        """(Re)create ``scratch`` on the backup host from backup ``name``'s dump of ``database`` (MariaDB: then
        replay the binary logs through ``until``)."""
        if self.mariadb:
            limit = f" --until {shlex.quote(until)}" if until else ""
            self.host.run(f"{SCRIPT} restore {shlex.join([name, database, scratch])}{limit}")
        else:
            load_dump(self.host, f"{self.folder(name)}/{database}.dump", scratch,
                      self.settings.get("postgresql_app_user", "postgres"))

    def drop(self, database: str) -> None:
        """Drop a scratch database on the backup host."""
        if self.mariadb:
            self.host.run(f"{SCRIPT} drop {shlex.quote(database)}", check=False)
        else:
            self.host.sql(f"drop database if exists {database} with (force)", check=False)

    def listing(self) -> list[dict]:
        """Every finished backup, newest first, with its checksum verdict."""
        return [json.loads(line) for line in self.host.run(f"{SCRIPT} list").splitlines() if line.startswith("{")]

    def newest_good(self) -> dict:
        """The newest backup whose checksums match; corrupted newer ones are reported and skipped."""
        for entry in self.listing():
            if entry["good"]:
                return entry
            self.out(f"skipped {entry['name']}: CORRUPT (checksums do not match)")
        raise FabstackError("no good backup exists", host=self.host.name)


def open_backups(root: Path, env: str, out: Callable[[str], None] = print) -> Backups:
    """The env's backup host (the one site.yml gives the backups role), connected."""
    project = load_env(root, env)
    select_hosts(project)  # the whole-env checks a deploy makes, before any host is contacted
    hosts = [h for h in project.inventory.hosts if "backups" in {r.name for r in project.roles_for(h)}]
    if not hosts:
        raise FabstackError("no host carries the backups role in site.yml", key="backups")
    host = reach(project, hosts[0])
    if not host.reachable:
        raise FabstackError(f"backup host unreachable: {host.error}", host=hosts[0])
    return Backups(project, host, out)


def with_backups(root: Path, env: str, action: Callable[[Backups], Any]) -> Any:
    """Run one backup action against the env's backup host, closing the connection afterwards."""
    handle = open_backups(root, env)
    try:
        return action(handle)
    finally:
        handle.host.close()


def run(backups: Backups) -> None:
    """Take a backup now (the nightly job's command) and show the resulting list."""
    backups.out(backups.host.run(SCRIPT + " run"))
    show(backups)


def show(backups: Backups) -> list[dict]:
    """Print the backups, newest first, marking corrupted ones."""
    entries = backups.listing()
    backups.out(f"{'NAME':<18}{'TIME':<27}STATE")
    for entry in entries:
        backups.out(f"{entry['name']:<18}{entry['time']:<27}{'good' if entry['good'] else 'CORRUPT'}")
    if not entries:
        backups.out("no backups yet")
    return entries


def restore(backups: Backups, name: str, target: str | None, into: str | None, force: bool,
            until: str | None = None) -> list[str]:
    """Restore a backup's databases on ``target`` (default: the backup host) into scratch databases
    (``DB_restore``, or ``into``); restoring over an existing database needs ``force``. MariaDB: ``until``
    (``YYYY-MM-DD HH:MM:SS``, UTC) replays the binary logs through that second. Returns the databases."""
    if not _NAME.match(name):
        raise FabstackError(f"not a backup name: {name!r} (see inv backup.list)", key="--name")
    if until is not None:
        _check_until(backups, name, until)
    if not any(e["name"] == name for e in backups.listing()):
        raise FabstackError(f"no backup {name} on {backups.host.name}", key="--name")
    if not _good(backups, name):
        raise FabstackError(f"backup {name} is CORRUPT (checksums do not match): not restoring it", key="--name")
    if backups.mariadb and target not in (None, backups.host.name):
        raise FabstackError("a MariaDB backup restores on its backup host (the primary); the restored database "
                            "replicates from there", key="--target")
    destination = backups.host if target in (None, backups.host.name) else reach(backups.project, target)
    if not destination.reachable:
        raise FabstackError(f"unreachable: {destination.error}", host=target or "")
    if not backups.mariadb and destination.sql("select pg_is_in_recovery()") == "t":
        raise FabstackError("is a read-only replica: restore onto the primary or a scratch cluster", host=target or "")
    databases = backups.databases(name)
    existing = backups.existing(destination)
    restored = []
    for database in databases:
        scratch = into if into and len(databases) == 1 else f"{database}_restore"
        if not _DB.match(scratch):
            raise FabstackError(f"not a plain database name: {scratch!r}", key="--into")
        if scratch in existing and not force:
            raise FabstackError(f"database {scratch} exists on {destination.name}: restoring over a live database "
                                "needs --force", key="--into", host=destination.name)
        if destination is backups.host:
            backups.load(name, database, scratch, until)
        else:
            _load_elsewhere(backups, destination, name, database, scratch)
        backups.out(f"restored {name}/{database} into {destination.name}:{scratch}"
                    + (f", through {until} UTC" if until else ""))
        restored.append(scratch)
    return restored


def _check_until(backups: Backups, name: str, until: str) -> None:
    """``--until`` must be a UTC second, after the backup was taken, not in the future; MariaDB only."""
    if not backups.mariadb:
        raise FabstackError("point-in-time restore (--until) is for the MariaDB tier; PostgreSQL restores whole "
                            "backups", key="--until")
    try:
        when = dt.datetime.strptime(until, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        raise FabstackError(f"not a time: {until!r} (YYYY-MM-DD HH:MM:SS, UTC)", key="--until") from None
    taken = dt.datetime.strptime(name, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    if when < taken:
        raise FabstackError(f"{until} is before backup {name} was taken: choose an older backup", key="--until")


def _load_elsewhere(backups: Backups, destination: RemoteHost, name: str, database: str, scratch: str) -> None:
    """PostgreSQL: copy a dump to another host and restore it there."""
    assert backups.host.conn is not None and destination.conn is not None
    dump = f"{backups.folder(name)}/{database}.dump"
    data = backups.host.conn.exec(f"{backups.host.conn.command_prefix()}cat {shlex.quote(dump)}")[1]
    # a private folder of root's own (mktemp -d, 0700): no predictable /tmp name, nobody else reads the dump
    folder = destination.run("mktemp -d /tmp/fabstack-restore.XXXXXXXX")
    path = f"{folder}/{database}.dump"
    try:
        destination.conn.exec(f"{destination.conn.command_prefix()}sh -c " + shlex.quote(
            f"umask 077 && cat > {shlex.quote(path)}"), data)
        load_dump(destination, path, scratch, backups.settings.get("postgresql_app_user", "postgres"))
    finally:
        destination.run(f"rm -rf {shlex.quote(folder)}", check=False)


def load_dump(host: RemoteHost, path: str, database: str, owner: str) -> None:
    """(Re)create ``database`` on ``host`` owned by ``owner`` and pg_restore the dump at ``path`` into it (as the
    superuser, so objects keep their owners; restore globals.sql first on a cluster that lacks the roles)."""
    host.sql(f"drop database if exists {database} with (force)")
    host.sql(f"create database {database} owner {owner}")
    # root opens the dump (backups are root's alone) and hands it to pg_restore on its standard input
    host.run(f"runuser -u postgres -- pg_restore --exit-on-error -d {shlex.quote(database)} < {shlex.quote(path)}")


def _good(backups: Backups, name: str) -> bool:
    return any(e["name"] == name and e["good"] for e in backups.listing())


def verify(backups: Backups) -> bool:
    """Restore the newest good backup into scratch databases and compare every table's row count and max(id)
    with the source's, taken in the very snapshot the dump read. Prints a table; True when all match."""
    entry = backups.newest_good()
    name = entry["name"]
    stats = json.loads(backups.host.run(f"cat {shlex.quote(backups.folder(name))}/stats.json"))
    scratch = {plain_database(db, f"backup {name}"): f"{db}_verify" for db in stats}
    ok = True
    backups.out(f"verifying {name} on {backups.host.name}")
    backups.out(f"{'DATABASE.TABLE':<34}{'ROWS (source)':>14}{'ROWS (restored)':>16}{'MAX ID':>10}{'RESTORED':>10}  OK")
    try:
        for database, tables in stats.items():
            backups.load(name, database, scratch[database])
            restored = json.loads(backups.host.run(f"{SCRIPT} stats {shlex.quote(scratch[database])}"))
            for table, (rows, max_id) in sorted(tables.items()):
                got = restored.get(table, [None, None])
                match = got == [rows, max_id]
                ok &= match
                backups.out(f"{database + '.' + table:<34}{rows:>14}{str(got[0]):>16}{str(max_id):>10}"
                            f"{str(got[1]):>10}  {'yes' if match else 'NO'}")
    finally:
        for database in scratch.values():
            backups.drop(database)
    backups.out("backup verified" if ok else "backup DOES NOT MATCH its source")
    return ok
