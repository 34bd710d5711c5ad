#!/usr/bin/python3
# managed by fabstack (role backups); local edits are overwritten
"""Nightly PostgreSQL backups: pg_dump -Fc per database plus globals, written under a temporary name, fsynced,
renamed into place with a SHA256SUMS manifest; then retention (daily / weekly / monthly) that never deletes the
newest good backup. A backup whose checksums do not match is reported and never counted as good.

Usage: fabstack-backup run | scheduled | list | prune [--now STAMP] | check NAME | stats DATABASE

``prune --now 20261123T030000Z`` prunes as if that were the time: retention is reckoned from "now" (the clock
unless given), so it can be tested at any date with faked backup names.

``scheduled`` (what cron runs) is ``run`` on a primary and a logged no-op on a server in recovery, so a host that
a failover turned into a replica stops taking backups even though its cron entry is still there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

SETTINGS = Path(os.environ.get("FABSTACK_BACKUP_SETTINGS", "/etc/fabstack/backup.json"))
STAMP = "%Y%m%dT%H%M%SZ"


def log(message: str) -> None:
    """One timestamped line on stdout (cron appends it to the log)."""
    print(f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} fabstack-backup: {message}", flush=True)


def sha256(path: Path) -> str:
    """The file's sha256."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def as_postgres(argv: list[str], output: Path) -> None:
    """Run a client as the postgres user, writing to ``output``; raise on failure."""
    with output.open("wb") as handle:
        proc = subprocess.run(["runuser", "-u", "postgres", "--", *argv], stdout=handle, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr.decode(errors='replace').strip()}")


class Session:
    """A psql session kept open as the postgres user, to hold one snapshot while pg_dump reads it."""

    def __init__(self, database: str, port: str) -> None:
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1", "-p", port,
             "-d", database], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, sql: str) -> list[str]:
        """Run one statement; its output lines."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{sql.rstrip(';')};\n\\echo __fabstack_end__\n")
        self.proc.stdin.flush()
        lines = []
        for line in self.proc.stdout:
            if line.rstrip("\n") == "__fabstack_end__":
                return lines
            lines.append(line.rstrip("\n"))
        raise RuntimeError(f"psql ended while running: {sql}")

    def close(self) -> None:
        """End the session."""
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def in_recovery(port: str) -> bool:
    """Whether the local server is a replica (``pg_is_in_recovery()``)."""
    session = Session("postgres", port)
    try:
        return session.ask("select pg_is_in_recovery()")[0] == "t"
    finally:
        session.close()


def table_stats(session: Session) -> dict[str, list]:
    """Row count and max(id) (where there is an id column) of every user table, in the session's snapshot."""
    stats = {}
    tables = session.ask("select format('%I.%I', schemaname, relname) from pg_stat_user_tables order by 1")
    for table in tables:
        has_id = session.ask(f"select count(*) from pg_attribute where attrelid = '{table}'::regclass "
                             "and attname = 'id' and not attisdropped")[0] == "1"
        count, max_id = session.ask(f"select count(*), {'max(id)' if has_id else 'null'} from {table}")[0].split("|")
        stats[table] = [int(count), int(max_id) if max_id else None]
    return stats


def dump_database(database: str, folder: Path, port: str) -> dict[str, list]:
    """pg_dump -Fc of one database, and its tables' stats taken in the very snapshot the dump reads."""
    session = Session(database, port)
    try:
        session.ask("begin isolation level repeatable read read only")
        snapshot = session.ask("select pg_export_snapshot()")[0]
        stats = table_stats(session)
        as_postgres(["pg_dump", "-p", port, "-Fc", f"--snapshot={snapshot}", database], folder / f"{database}.dump")
        session.ask("commit")
    finally:
        session.close()
    return stats


def run(settings: dict) -> Path:
    """Take one backup; returns its folder."""
    root = Path(settings["dir"])
    name = dt.datetime.now(dt.UTC).strftime(STAMP)
    tmp = root / f".tmp-{name}"
    tmp.mkdir(mode=0o750)
    shutil.chown(tmp, "postgres", "postgres")
    try:
        port = str(settings.get("port", 5432))
        as_postgres(["pg_dumpall", "-p", port, "--globals-only", "--no-role-passwords"], tmp / "globals.sql")
        stats = {database: dump_database(database, tmp, port) for database in settings["databases"]}
        (tmp / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n")
        lines = []
        for file in sorted(tmp.iterdir()):
            fsync_path(file)
            lines.append(f"{sha256(file)}  {file.name}\n")
        (tmp / "SHA256SUMS").write_text("".join(lines))
        fsync_path(tmp / "SHA256SUMS")
        fsync_path(tmp)
        final = root / name
        os.rename(tmp, final)
        fsync_path(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"backup {name} written ({len(lines)} files)")
    return final


def is_good(folder: Path) -> bool:
    """Whether every file listed in the folder's SHA256SUMS is there with that checksum."""
    manifest = folder / "SHA256SUMS"
    if not manifest.is_file():
        return False
    entries = [line.split("  ", 1) for line in manifest.read_text().splitlines() if line.strip()]
    return bool(entries) and all((folder / n).is_file() and sha256(folder / n) == h for h, n in entries)


def backups(root: Path) -> list[tuple[dt.datetime, Path]]:
    """Finished backups, newest first (temporary folders are never listed)."""
    found = []
    for folder in root.iterdir() if root.is_dir() else []:
        try:
            when = parse_stamp(folder.name)
        except ValueError:
            continue
        found.append((when, folder))
    return sorted(found, reverse=True)


def parse_stamp(text: str) -> dt.datetime:
    """A backup name (or ``--now`` value) as an aware UTC time; ValueError if it is not one."""
    return dt.datetime.strptime(text, STAMP).replace(tzinfo=dt.UTC)


def to_keep(good: list[dt.datetime], keep: dict[str, int]) -> set[dt.datetime]:
    """Grandfather-father-son retention over the good backups' times (newest first).

    The newest backup of each of the last ``daily`` days, ``weekly`` ISO weeks and ``monthly`` months that have
    a backup is kept, and the newest good backup always (as restic's and borg's ``--keep-*`` count periods).
    """
    kept: set[dt.datetime] = set(good[:1])
    buckets = {
        "daily": lambda t: t.date(),
        "weekly": lambda t: t.isocalendar()[:2],
        "monthly": lambda t: (t.year, t.month),
    }
    for period, key_of in buckets.items():
        seen: list[object] = []
        for when in good:
            key = key_of(when)
            if key not in seen:
                if len(seen) == keep[period]:
                    break
                seen.append(key)
                kept.add(when)
    return kept


def prune(settings: dict, now: dt.datetime) -> None:
    """Delete good backups outside retention, reckoned at ``now``; report bad ones (deleted once a year old).

    A backup dated after ``now`` (a clock that went back) is left alone and not counted, so it can never push
    the real ones out of retention.
    """
    root = Path(settings["dir"])
    found = backups(root)
    for when, folder in found:
        if when > now:
            log(f"backup {folder.name} is dated after now ({now:{STAMP}}): left alone, not counted")
    found = [(when, folder) for when, folder in found if when <= now]
    good = [(when, folder) for when, folder in found if is_good(folder)]
    kept = to_keep([when for when, _ in good], settings["keep"])
    for when, folder in found:
        if (when, folder) in good:
            if when not in kept:
                shutil.rmtree(folder)
                log(f"pruned {folder.name}")
        else:
            log(f"CORRUPT backup {folder.name}: checksums do not match; never counted as good")
            if (now - when).days > 366:
                shutil.rmtree(folder)


def record_metric(settings: dict, folder: Path = Path("/var/lib/prometheus/node-exporter")) -> None:
    """The newest good backup's time, for node_exporter's textfile collector (the "backup too old" alert); left
    out where no exporter reads that folder."""
    good = [when for when, found in backups(Path(settings["dir"])) if is_good(found)]
    if not good or not folder.is_dir():
        return
    tmp = folder / ".fabstack_backup.prom.tmp"
    tmp.write_text("# HELP fabstack_backup_last_good_timestamp_seconds When the newest good backup was taken.\n"
                   "# TYPE fabstack_backup_last_good_timestamp_seconds gauge\n"
                   f"fabstack_backup_last_good_timestamp_seconds {max(good).timestamp():.0f}\n")
    tmp.chmod(0o644)
    tmp.replace(folder / "fabstack_backup.prom")


def option(argv: list[str], name: str) -> str | None:
    """The value after ``name`` in ``argv``, if given."""
    if name in argv:
        index = argv.index(name)
        if index + 1 >= len(argv):
            raise ValueError(f"{name} needs a value")
        return argv[index + 1]
    return None


def main(argv: list[str]) -> int:
    """Entry point; the exit status is non-zero on any failure."""
    settings = json.loads(SETTINGS.read_text())
    command = argv[1] if len(argv) > 1 else "run"
    try:
        given = option(argv, "--now")
        now = parse_stamp(given) if given else dt.datetime.now(dt.UTC)
        if command == "scheduled" and in_recovery(str(settings.get("port", 5432))):
            log("skipped: this server is in recovery (a replica); backups are taken on the primary")
        elif command in ("run", "scheduled"):
            run(settings)
            prune(settings, dt.datetime.now(dt.UTC))  # reckoned after the backup just taken, which must count
            record_metric(settings)
        elif command == "prune":
            prune(settings, now)
        elif command == "list":
            for when, folder in backups(Path(settings["dir"])):
                print(json.dumps({"name": folder.name, "time": when.isoformat(), "good": is_good(folder)}))
        elif command == "check":
            return 0 if is_good(Path(settings["dir"]) / argv[2]) else 1
        elif command == "stats":
            session = Session(argv[2], str(settings.get("port", 5432)))
            try:
                print(json.dumps(table_stats(session), sort_keys=True))
            finally:
                session.close()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as exc:  # noqa: BLE001 - cron needs one line and a non-zero status
        log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
