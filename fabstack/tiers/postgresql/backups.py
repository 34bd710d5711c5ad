"""Restoring the PostgreSQL tier's backups: a ``pg_dump -Fc`` per database, restored whole with ``pg_restore`` on
the backup host or on another host of the tier."""

from __future__ import annotations

import shlex

from fabstack.engine.remote import RemoteHost
from fabstack.tiers.base import BackupPlace
from fabstack.tiers.postgresql.sql import sql

suffix = ".dump"
point_in_time = False
restores_elsewhere = True


def databases_on(host: RemoteHost) -> set[str]:
    """The databases of the host's cluster."""
    return set(sql(host, "select datname from pg_database").split())


def refuse_destination(host: RemoteHost) -> str:
    """A read-only replica takes no restore."""
    if sql(host, "select pg_is_in_recovery()") == "t":
        return "is a read-only replica: restore onto the primary or a scratch cluster"
    return ""


def load(place: BackupPlace, name: str, database: str, scratch: str, until: str | None) -> None:
    """Restore the dump on the backup host (``until`` is refused before this: no point-in-time here)."""
    load_dump(place.host, f"{place.folder(name)}/{database}{suffix}", scratch, _owner(place))


def load_into(place: BackupPlace, destination: RemoteHost, name: str, database: str, scratch: str) -> None:
    """Copy a dump to another host and restore it there."""
    assert place.host.conn is not None and destination.conn is not None
    dump = f"{place.folder(name)}/{database}{suffix}"
    data = place.host.conn.exec(f"{place.host.conn.command_prefix()}cat {shlex.quote(dump)}")[1]
    # a private folder of root's own (mktemp -d, 0700): no predictable /tmp name, nobody else reads the dump
    folder = destination.run("mktemp -d /tmp/fabstack-restore.XXXXXXXX")
    path = f"{folder}/{database}{suffix}"
    try:
        destination.conn.exec(f"{destination.conn.command_prefix()}sh -c " + shlex.quote(
            f"umask 077 && cat > {shlex.quote(path)}"), data)
        load_dump(destination, path, scratch, _owner(place))
    finally:
        destination.run(f"rm -rf {shlex.quote(folder)}", check=False)


def drop(place: BackupPlace, database: str) -> None:
    """Drop a scratch database, connections and all."""
    sql(place.host, f"drop database if exists {database} with (force)", check=False)


def load_dump(host: RemoteHost, path: str, database: str, owner: str) -> None:
    """(Re)create ``database`` on ``host`` owned by ``owner`` and pg_restore the dump at ``path`` into it (as the
    superuser, so objects keep their owners; restore globals.sql first on a cluster that lacks the roles)."""
    sql(host, f"drop database if exists {database} with (force)")
    sql(host, f"create database {database} owner {owner}")
    # root opens the dump (backups are root's alone) and hands it to pg_restore on its standard input
    host.run(f"runuser -u postgres -- pg_restore --exit-on-error -d {shlex.quote(database)} < {shlex.quote(path)}")


def _owner(place: BackupPlace) -> str:
    return str(place.settings.get("postgresql_app_user", "postgres"))
