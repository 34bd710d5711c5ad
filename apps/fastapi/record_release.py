"""Release hook (run once per release, before the switch): record the release in the database.

Stands in for a schema migration: fabstack runs it on exactly one host of each release.
"""

from __future__ import annotations

import socket

import psycopg
from settings import REVISION, load_settings


def main() -> None:
    """One row per release of this app."""
    with psycopg.connect(load_settings()["DB_RW_DSN"], prepare_threshold=None, autocommit=True) as conn:
        conn.execute("insert into app_releases (app, revision, host) values ('fastapi', %s, %s)",
                     (REVISION, socket.gethostname()))


if __name__ == "__main__":
    main()
