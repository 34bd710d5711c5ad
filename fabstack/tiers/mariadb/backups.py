"""Restoring the MariaDB tier's backups: a ``mariadb-dump`` per database plus the archived binary logs, restored
on the backup host (the primary: the restored database replicates from there), up to a chosen second."""

from __future__ import annotations

from fabstack.engine.errors import FabstackError
from fabstack.engine.remote import RemoteHost
from fabstack.tiers.base import BackupPlace
from fabstack.tiers.mariadb.sql import mariadb

suffix = ".sql"
point_in_time = True
restores_elsewhere = False


def databases_on(host: RemoteHost) -> set[str]:
    """The databases of the host's server."""
    return set(mariadb(host, "show databases").split())


def refuse_destination(host: RemoteHost) -> str:
    """The backup host is the primary: it always takes a restore."""
    return ""


def load(place: BackupPlace, name: str, database: str, scratch: str, until: str | None) -> None:
    """The backup script loads the dump, then replays the binary logs through ``until``."""
    place.script("restore", name, database, scratch, *(["--until", until] if until else []))


def load_into(place: BackupPlace, destination: RemoteHost, name: str, database: str, scratch: str) -> None:
    """Never called: a MariaDB backup restores on its backup host."""
    raise FabstackError("a MariaDB backup restores on its backup host (the primary); the restored database "
                        "replicates from there", key="--target")


def drop(place: BackupPlace, database: str) -> None:
    """The backup script drops the scratch database."""
    place.script("drop", database, check=False)
