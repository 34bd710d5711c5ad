"""``inv backup.*``: run, list, restore and verify an env's backups. Where a backup host holds a pgBackRest
repository (the PostgreSQL tier's), they speak pgBackRest (``fabstack.tiers.postgresql.repository``); otherwise
they act on the dumps the backups role takes, for any db tier (the backup host's settings say which; the tier's
``backups`` engine restores). Both can stop a restore at a chosen second (``--until``): pgBackRest from its WAL
archive, MariaDB from its binary logs."""

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
from fabstack.engine.hostlock import HostLocks
from fabstack.engine.project import Project
from fabstack.engine.remote import RemoteHost, reach
from fabstack.engine.runner import select_hosts
from fabstack.stack.hostfiles import BACKUP_SETTINGS
from fabstack.tiers.base import BackupEngine, BackupPlace
from fabstack.tiers.env import load_env
from fabstack.tiers.postgresql.repository import CLIENT_ROLE, MEMBER_ROLES, REPOSITORY_ROLE, Repository, parse_until
from fabstack.tiers.registry import TIERS

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
    """The env's backup host, its tier's way of restoring, and the commands run on it."""

    project: Project
    host: RemoteHost
    out: Callable[[str], None]

    @cached_property
    def repository(self) -> Repository | None:
        """The pgBackRest repository, when the backup host holds one."""
        if REPOSITORY_ROLE in {r.name for r in self.project.roles_for(self.host.name)}:
            return Repository(self.host, self.out)
        return None

    @property
    def settings(self) -> dict:
        """The env's settings for the backup host."""
        return self.host.setup.vars

    @cached_property
    def on_host(self) -> dict:
        """What the backups role wrote on the host: ``engine`` (the tier's name), ``dir``, ``databases``."""
        return dict(json.loads(self.host.run(f"cat {shlex.quote(BACKUP_SETTINGS)}")))

    @property
    def engine(self) -> BackupEngine:
        """How the backup host's tier restores its backups."""
        kind = self.on_host.get("engine")
        if kind not in TIERS:
            raise FabstackError(f"unknown db tier {kind!r} in {BACKUP_SETTINGS}", host=self.host.name)
        return TIERS[kind].backups

    @property
    def place(self) -> BackupPlace:
        """The backup host and its backups' folder."""
        return BackupPlace(self.host, self.on_host["dir"], self.settings)

    def databases(self, name: str) -> list[str]:
        """The databases a backup holds."""
        suffix = self.engine.suffix
        listed = self.host.run(f"ls {shlex.quote(self.place.folder(name))}").split()
        return [plain_database(f.removesuffix(suffix), f"backup {name}") for f in listed if f.endswith(suffix)]

    def listing(self) -> list[dict]:
        """Every finished backup, newest first, with its checksum verdict."""
        return [json.loads(line) for line in self.place.script("list").splitlines() if line.startswith("{")]

    def newest_good(self) -> dict:
        """The newest backup whose checksums match; corrupted newer ones are reported and skipped."""
        for entry in self.listing():
            if entry["good"]:
                return entry
            self.out(f"skipped {entry['name']}: CORRUPT (checksums do not match)")
        raise FabstackError("no good backup exists", host=self.host.name)


def open_backups(root: Path, env: str, out: Callable[[str], None] = print) -> Backups:
    """The env's backup host (the one site.yml gives the pgbackrest_repo role, else the backups role), connected."""
    project = load_env(root, env)
    select_hosts(project)  # the whole-env checks a deploy makes, before any host is contacted
    hosts = [h for role in (REPOSITORY_ROLE, "backups") for h in project.inventory.hosts
             if role in {r.name for r in project.roles_for(h)}]
    if not hosts:
        raise FabstackError(f"no host carries the {REPOSITORY_ROLE} or the backups role in site.yml", key="backups")
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


def run(backups: Backups, kind: str | None = None) -> None:
    """Take a backup now (the scheduled job's command) and show the resulting list; pgBackRest takes ``kind``
    (full, diff, incr)."""
    if backups.repository is not None:
        backups.repository.run(kind)
        return
    if kind is not None:
        raise FabstackError("a dump is always whole: --kind is for a pgBackRest repository", key="--kind")
    backups.out(backups.place.script("run"))
    show(backups)


def show(backups: Backups) -> list[dict]:
    """Print the backups, newest first, marking corrupted ones."""
    if backups.repository is not None:
        return backups.repository.show()
    entries = backups.listing()
    backups.out(f"{'NAME':<18}{'TIME':<27}STATE")
    for entry in entries:
        backups.out(f"{entry['name']:<18}{entry['time']:<27}{'good' if entry['good'] else 'CORRUPT'}")
    if not entries:
        backups.out("no backups yet")
    return entries


def restore(backups: Backups, name: str | None, target: str | None, into: str | None, force: bool,
            until: str | None = None) -> Any:
    """Restore a backup's databases on ``target`` (default: the backup host) into scratch databases
    (``DB_restore``, or ``into``); restoring over an existing database needs ``force``. MariaDB: ``until``
    (``YYYY-MM-DD HH:MM:SS``, UTC) replays the binary logs through that second. Returns the databases.
    A pgBackRest repository restores the whole cluster onto a spare ``target`` instead (see
    ``restore_cluster``)."""
    if backups.repository is not None:
        return restore_cluster(backups, backups.repository, name, target, into, force, until)
    if name is None or not _NAME.match(name):
        raise FabstackError(f"not a backup name: {name!r} (see inv backup.list)", key="--name")
    if until is not None:
        _check_until(backups, name, until)
    if not any(e["name"] == name for e in backups.listing()):
        raise FabstackError(f"no backup {name} on {backups.host.name}", key="--name")
    if not _good(backups, name):
        raise FabstackError(f"backup {name} is CORRUPT (checksums do not match): not restoring it", key="--name")
    engine, place = backups.engine, backups.place
    if not engine.restores_elsewhere and target not in (None, backups.host.name):
        engine.load_into(place, backups.host, name, "", "")  # refuses, saying where this tier restores
    destination = backups.host if target in (None, backups.host.name) else reach(backups.project, target)
    if not destination.reachable:
        raise FabstackError(f"unreachable: {destination.error}", host=target or "")
    refused = engine.refuse_destination(destination)
    if refused:
        raise FabstackError(refused, host=target or "")
    assert destination.conn is not None
    locks = HostLocks(f"backup.restore {name} --env {backups.project.env}",
                      out=lambda host, text: backups.out(f"{host:<8} | {text}"))
    locks.take({destination.name: destination.conn})
    try:
        return restore_databases(backups, name, destination, into, force, until)
    finally:
        locks.release()


def restore_cluster(backups: Backups, repository: Repository, label: str | None, target: str | None,
                    into: str | None, force: bool, until: str | None) -> dict[str, Any]:
    """Restore the PostgreSQL cluster from the repository onto ``target``, a host with the pgbackrest role and no
    live member of the tier, under its lock: every transaction committed through ``until`` (default: all that
    was archived), from backup ``label`` (default: the newest before it)."""
    if into is not None:
        raise FabstackError("a pgBackRest restore brings back the whole cluster: --into is for dumps", key="--into")
    if until is not None:
        parse_until(until)
    if target is None:
        raise FabstackError("a pgBackRest restore needs a spare host to start the cluster on", key="--target")
    roles = {r.name for r in backups.project.roles_for(target)} if target in backups.project.inventory.hosts else None
    if roles is None:
        raise FabstackError(f"no host {target} in the inventory", key="--target")
    if CLIENT_ROLE not in roles or set(MEMBER_ROLES) & roles:
        raise FabstackError(f"is not a restore target: it needs the {CLIENT_ROLE} role and no "
                            f"{' or '.join(MEMBER_ROLES)} role (a live member is never restored over)",
                            key="--target", host=target)
    destination = reach(backups.project, target)
    if not destination.reachable:
        raise FabstackError(f"unreachable: {destination.error}", host=target)
    assert destination.conn is not None
    locks = HostLocks(f"backup.restore --target {target} --env {backups.project.env}",
                      out=lambda host, text: backups.out(f"{host:<8} | {text}"))
    locks.take({destination.name: destination.conn})
    try:
        return repository.restore(destination, until, label, force)
    finally:
        locks.release()
        destination.close()


def restore_databases(backups: Backups, name: str, destination: RemoteHost, into: str | None, force: bool,
                      until: str | None) -> list[str]:
    """Load each database of a checked backup into its scratch database on ``destination`` (held under its lock)."""
    engine, place = backups.engine, backups.place
    databases = backups.databases(name)
    existing = engine.databases_on(destination)
    restored = []
    for database in databases:
        scratch = into if into and len(databases) == 1 else f"{database}_restore"
        if not _DB.match(scratch):
            raise FabstackError(f"not a plain database name: {scratch!r}", key="--into")
        if scratch in existing and not force:
            raise FabstackError(f"database {scratch} exists on {destination.name}: restoring over a live database "
                                "needs --force", key="--into", host=destination.name)
        if destination is backups.host:
            engine.load(place, name, database, scratch, until)
        else:
            engine.load_into(place, destination, name, database, scratch)
        backups.out(f"restored {name}/{database} into {destination.name}:{scratch}"
                    + (f", through {until} UTC" if until else ""))
        restored.append(scratch)
    return restored


def _check_until(backups: Backups, name: str, until: str) -> None:
    """``--until`` must be a UTC second, after the backup was taken; only for a tier that replays logs."""
    if not backups.engine.point_in_time:
        raise FabstackError(f"point-in-time restore (--until) is not for the {backups.on_host.get('engine')} tier: "
                            "it restores whole backups", key="--until")
    when = parse_until(until)
    taken = dt.datetime.strptime(name, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    if when < taken:
        raise FabstackError(f"{until} is before backup {name} was taken: choose an older backup", key="--until")


def _good(backups: Backups, name: str) -> bool:
    return any(e["name"] == name and e["good"] for e in backups.listing())


def verify(backups: Backups) -> bool:
    """Restore the newest good backup into scratch databases and compare every table's row count and max(id)
    with the source's, taken in the very snapshot the dump read. Prints a table; True when all match. A
    pgBackRest repository checks its archive and every file's checksum instead."""
    if backups.repository is not None:
        return backups.repository.verify()
    entry = backups.newest_good()
    name = entry["name"]
    place, engine = backups.place, backups.engine
    stats = json.loads(backups.host.run(f"cat {shlex.quote(place.folder(name))}/stats.json"))
    scratch = {plain_database(db, f"backup {name}"): f"{db}_verify" for db in stats}
    ok = True
    backups.out(f"verifying {name} on {backups.host.name}")
    backups.out(f"{'DATABASE.TABLE':<34}{'ROWS (source)':>14}{'ROWS (restored)':>16}{'MAX ID':>10}{'RESTORED':>10}  OK")
    try:
        for database, tables in stats.items():
            engine.load(place, name, database, scratch[database], None)
            restored = json.loads(place.script("stats", scratch[database]))
            for table, (rows, max_id) in sorted(tables.items()):
                got = restored.get(table, [None, None])
                match = got == [rows, max_id]
                ok &= match
                backups.out(f"{database + '.' + table:<34}{rows:>14}{str(got[0]):>16}{str(max_id):>10}"
                            f"{str(got[1]):>10}  {'yes' if match else 'NO'}")
    finally:
        for database in scratch.values():
            engine.drop(place, database)
    backups.out("backup verified" if ok else "backup DOES NOT MATCH its source")
    return ok
