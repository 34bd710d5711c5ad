#!/usr/bin/python3
# managed by fabstack (role backups); local edits are overwritten
"""Nightly database backups, PostgreSQL's or MariaDB's (the settings' ``engine``): a dump per database (pg_dump -Fc
plus globals; mariadb-dump --single-transaction with its binary log position and GTID), written under a
temporary name, fsynced, renamed into place with a SHA256SUMS manifest; then retention (daily / weekly / monthly)
that never deletes the newest good backup. A backup whose checksums do not match is reported and never counted
as good. Every table's row count and max(id) are recorded as the dump saw them, for ``inv backup.verify``.

MariaDB also archives its binary logs (``archive-binlogs``, from cron every few minutes) beside the backups, so a
backup plus the logs after it restores any second since (``restore ... --until``): the RPO is the archive's
interval, or nothing lost while the primary's own logs survive.

With an offsite host in the settings, each backup and each binary log archived is then copied to it (rsync over
SSH, ``offsite``), where an append-only account keeps it: this host can add files there, never change or delete
one, so a lost or compromised host takes no backup with it.

Usage: fabstack-backup run | scheduled | list | prune [--now STAMP] | check NAME | stats DATABASE | offsite
       fabstack-backup archive-binlogs | restore NAME DATABASE INTO [--until 'YYYY-MM-DD HH:MM:SS'] | drop DATABASE

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
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
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


def create(path: Path, mode: int = 0o640) -> int:
    """A new file at ``path``, opened for writing: never an existing one, never through a link."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def write_new(path: Path, text: str, mode: int = 0o640) -> None:
    """``text`` into a new file at ``path`` (see create), flushed to disk."""
    with os.fdopen(create(path, mode), "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_path(path: Path) -> None:
    """Flush a file or folder to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def as_postgres(argv: list[str], output: Path) -> None:
    """Run a client as the postgres user, writing to ``output``; raise on failure."""
    with os.fdopen(create(output), "wb") as handle:
        proc = subprocess.run(["runuser", "-u", "postgres", "--", *argv], stdout=handle, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr.decode(errors='replace').strip()}")


END = "__fabstack_end__"


class ClientSession:
    """A database client kept open, to hold one snapshot across several statements: each statement is followed
    by one that prints ``END``, so its output ends there."""

    def __init__(self, argv: list[str], end_statement: str) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.end_statement = end_statement

    def ask(self, sql: str) -> list[str]:
        """Run one statement; its output lines."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{sql.rstrip(';')};\n{self.end_statement}\n")
        self.proc.stdin.flush()
        lines = []
        for line in self.proc.stdout:
            if line.rstrip("\n") == END:
                return lines
            lines.append(line.rstrip("\n"))
        raise RuntimeError(f"the client ended while running: {sql}")

    def close(self) -> None:
        """End the session."""
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def psql_session(database: str, port: str) -> ClientSession:
    """A psql session as the postgres user (to hold one snapshot while pg_dump reads it)."""
    return ClientSession(["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1",
                          "-p", port, "-d", database], f"\\echo {END}")


def mariadb_session() -> ClientSession:
    """A mariadb client session as MariaDB's root (to hold one consistent snapshot while counting rows)."""
    return ClientSession(["mariadb", "--batch", "-N", "--unbuffered"], f"select '{END}';")


def in_recovery(port: str) -> bool:
    """Whether the local server is a replica (``pg_is_in_recovery()``)."""
    session = psql_session("postgres", port)
    try:
        return session.ask("select pg_is_in_recovery()")[0] == "t"
    finally:
        session.close()


def table_stats(session: ClientSession) -> dict[str, list]:
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
    session = psql_session(database, port)
    try:
        session.ask("begin isolation level repeatable read read only")
        snapshot = session.ask("select pg_export_snapshot()")[0]
        stats = table_stats(session)
        as_postgres(["pg_dump", "-p", port, "-Fc", f"--snapshot={snapshot}", database], folder / f"{database}.dump")
        session.ask("commit")
    finally:
        session.close()
    return stats


def mariadb(sql: str, database: str = "") -> list[str]:
    """Statements as MariaDB's root over the local socket; the output's lines (tab-separated fields)."""
    proc = subprocess.run(["mariadb", "--batch", "-N", "-e", sql, *([database] if database else [])],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"mariadb failed: {proc.stderr.strip()}")
    return proc.stdout.splitlines()


def mariadb_stats(ask: Callable[[str], list[str]], database: str) -> dict[str, list]:
    """Row count and max(id) (where there is an id column) of every base table of a MariaDB database."""
    stats = {}
    for table in ask(f"select table_name from information_schema.tables where table_schema = '{database}' "
                     "and table_type = 'BASE TABLE' order by 1"):
        has_id = ask(f"select count(*) from information_schema.columns where table_schema = '{database}' "
                     f"and table_name = '{table}' and column_name = 'id'")[0] == "1"
        count, max_id = ask(f"select count(*), {'max(id)' if has_id else 'null'} from `{database}`.`{table}`")[0] \
            .split("\t")
        stats[table] = [int(count), int(max_id) if max_id not in ("NULL", "") else None]
    return stats


def dump_mariadb(database: str, folder: Path, attempts: int = 5) -> tuple[dict[str, list], dict[str, str]]:
    """mariadb-dump of one database in one consistent snapshot, and its tables' stats taken in a snapshot at the
    same binary log position (both report it; on a busy server the pair is taken again until they agree).
    Returns the stats and the position (file, offset, GTID)."""
    for _ in range(attempts):
        session = mariadb_session()
        try:
            session.ask("start transaction with consistent snapshot")
            status = dict(line.split("\t") for line in session.ask("show status like 'binlog_snapshot_%'"))
            stats = mariadb_stats(session.ask, database)
            output = folder / f"{database}.sql"
            with os.fdopen(create(output), "wb") as handle:
                proc = subprocess.run(["mariadb-dump", "--single-transaction", "--master-data=2", "--gtid",
                                       "--routines", "--triggers", database], stdout=handle, stderr=subprocess.PIPE)
            if proc.returncode != 0:
                raise RuntimeError(f"mariadb-dump failed: {proc.stderr.decode(errors='replace').strip()}")
            session.ask("commit")
        finally:
            session.close()
        position = dump_position(output)
        if (position["file"], position["offset"]) == (status["Binlog_snapshot_file"],
                                                      status["Binlog_snapshot_position"]):
            return stats, position
    raise RuntimeError(f"{database}: the server was too busy to count rows at the dump's position")


def dump_position(dump: Path) -> dict[str, str]:
    """The binary log file, offset and GTID a dump's comments give (``--master-data=2 --gtid``)."""
    found = {"file": "", "offset": "", "gtid": ""}
    with dump.open(errors="replace") as handle:
        for line in handle:
            match = re.match(r"-- CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+);", line)
            if match:
                found["file"], found["offset"] = match.groups()
            match = re.match(r"-- SET GLOBAL gtid_slave_pos='([^']*)';", line)
            if match:
                found["gtid"] = match.group(1)
                break
    return found


def run(settings: dict) -> Path:
    """Take one backup; returns its folder."""
    root = Path(settings["dir"])
    name = dt.datetime.now(dt.UTC).strftime(STAMP)
    tmp = root / f".tmp-{name}"
    tmp.mkdir(mode=0o700)  # root's alone: the clients write to a descriptor root opened, never into the folder
    mariadb_engine = settings.get("engine") == "mariadb"
    try:
        if mariadb_engine:
            stats, positions = {}, {}
            for database in settings["databases"]:
                stats[database], positions[database] = dump_mariadb(database, tmp)
            write_new(tmp / "positions.json", json.dumps(positions, indent=1, sort_keys=True) + "\n")
        else:
            port = str(settings.get("port", 5432))
            as_postgres(["pg_dumpall", "-p", port, "--globals-only", "--no-role-passwords"], tmp / "globals.sql")
            stats = {database: dump_database(database, tmp, port) for database in settings["databases"]}
        write_new(tmp / "stats.json", json.dumps(stats, indent=1, sort_keys=True) + "\n")
        lines = []
        for file in sorted(tmp.iterdir()):
            fsync_path(file)
            lines.append(f"{sha256(file)}  {file.name}\n")
        write_new(tmp / "SHA256SUMS", "".join(lines))
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


BINLOGS = "binlogs"
ARCHIVED_GTID = ".archived-gtid"


def archive_binlogs(settings: dict) -> int:
    """Close MariaDB's current binary log (when anything was written since the last archive) and copy every
    closed one not yet archived into the backups' ``binlogs`` folder (under a temporary name, fsynced, with its
    checksum). Returns how many were copied."""
    folder = Path(settings["dir"]) / BINLOGS
    folder.mkdir(mode=0o750, exist_ok=True)
    marker = folder / ARCHIVED_GTID
    position = mariadb("select @@gtid_binlog_pos")[0]
    if not marker.is_file() or marker.read_text().strip() != position:
        mariadb("flush binary logs")
        marker.write_text(position + "\n")
    logs = [line.split("\t")[0] for line in mariadb("show binary logs")]
    datadir = Path(mariadb("select @@log_bin_basename")[0]).parent
    copied = 0
    for name in logs[:-1]:  # the last one is still being written
        if (folder / name).exists():
            continue
        tmp = folder / f".tmp-{name}"
        if tmp.is_file():
            tmp.unlink()  # left by a run that died: root's own folder, nobody else writes here
        source = os.open(datadir / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)  # mysql's folder: no link
        with os.fdopen(source, "rb") as src, os.fdopen(create(tmp), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        fsync_path(tmp)
        write_new(folder / f"{name}.sha256", f"{sha256(tmp)}  {name}\n")
        os.rename(tmp, folder / name)
        copied += 1
    fsync_path(folder)
    if copied:
        log(f"archived {copied} binary log(s)")
    return copied


def prune_binlogs(settings: dict) -> None:
    """Delete archived binary logs closed before the oldest good backup: no restore can start before it."""
    good = [when for when, folder in backups(Path(settings["dir"])) if is_good(folder)]
    folder = Path(settings["dir"]) / BINLOGS
    if not good or not folder.is_dir():
        return
    oldest = min(good).timestamp()
    for path in folder.iterdir():
        if not path.name.startswith(".") and not path.name.endswith(".sha256") and path.stat().st_mtime < oldest:
            path.unlink()
            Path(f"{path}.sha256").unlink(missing_ok=True)
            log(f"pruned binary log {path.name}")


def binlog_files(settings: dict) -> list[str]:
    """Every binary log this host has, archived or still in its data folder (the live copy wins), in order."""
    datadir = Path(mariadb("select @@log_bin_basename")[0]).parent
    live = {line.split("\t")[0]: str(datadir / line.split("\t")[0]) for line in mariadb("show binary logs")}
    folder = Path(settings["dir"]) / BINLOGS
    archived = {p.name: str(p) for p in folder.iterdir()} if folder.is_dir() else {}
    names = sorted(n for n in {**archived, **live} if re.fullmatch(r".+\.\d{6}", n))
    return [live.get(n) or archived[n] for n in names]


# GTID settings in mariadb-binlog's output: replayed as they are, they would clash with the server's own GTID
# sequence (strict mode); without them the server gives the replayed transactions new GTIDs of its own.
_GTID_LINES = re.compile(rb"SET @@session\.(gtid_seq_no|server_id|gtid_domain_id)=")


def restore_mariadb(settings: dict, name: str, database: str, into: str, until: str | None) -> None:
    """(Re)create ``into`` from backup ``name``'s dump of ``database``; with ``until`` (UTC, to the second,
    inclusive), replay the binary logs from the dump's GTID through that second."""
    folder = Path(settings["dir"]) / name
    if not is_good(folder):
        raise RuntimeError(f"backup {name} is missing or corrupt")
    taken = parse_stamp(name)
    stop = None
    if until:
        stop = dt.datetime.strptime(until, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        if stop < taken:
            raise RuntimeError(f"{until} is before backup {name} was taken: restore an older backup")
    mariadb(f"drop database if exists `{into}`; create database `{into}`")
    with (folder / f"{database}.sql").open("rb") as handle:
        proc = subprocess.run(["mariadb", into], stdin=handle, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"loading the dump failed: {proc.stderr.decode(errors='replace').strip()}")
    if stop is None:
        log(f"restored {name}/{database} into {into}")
        return
    gtid = json.loads((folder / "positions.json").read_text())[database]["gtid"]
    after = (stop + dt.timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    binlog = subprocess.run(
        ["mariadb-binlog", f"--start-position={gtid}", f"--stop-datetime={after}", f"--database={database}",
         f"--rewrite-db={database}->{into}", *binlog_files(settings)],
        capture_output=True, env={**os.environ, "TZ": "UTC"})
    if binlog.returncode != 0:
        raise RuntimeError(f"mariadb-binlog failed: {binlog.stderr.decode(errors='replace').strip()}")
    events = b"\n".join(line for line in binlog.stdout.split(b"\n") if not _GTID_LINES.search(line))
    proc = subprocess.run(["mariadb"], input=events, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"replaying the binary logs failed: {proc.stderr.decode(errors='replace').strip()}")
    log(f"restored {name}/{database} into {into}, binary logs replayed from GTID {gtid} through {until} UTC")


def is_replica(settings: dict) -> bool:
    """Whether the local server is a replica (PostgreSQL in recovery; MariaDB read_only)."""
    if settings.get("engine") == "mariadb":
        return mariadb("select @@read_only")[0] == "1"
    return in_recovery(str(settings.get("port", 5432)))


def record_metric(settings: dict, folder: Path = Path("/var/lib/prometheus/node-exporter")) -> None:
    """The newest good backup's time, for node_exporter's textfile collector (the "backup too old" alert); left
    out where no exporter reads that folder."""
    good = [when for when, found in backups(Path(settings["dir"])) if is_good(found)]
    if not good or not folder.is_dir():
        return
    tmp = folder / f".fabstack_backup.prom.{os.urandom(6).hex()}"  # the exporter's folder: a name nobody can guess
    write_new(tmp, "# HELP fabstack_backup_last_good_timestamp_seconds When the newest good backup was taken.\n"
                   "# TYPE fabstack_backup_last_good_timestamp_seconds gauge\n"
                   f"fabstack_backup_last_good_timestamp_seconds {max(good).timestamp():.0f}\n", 0o644)
    tmp.replace(folder / "fabstack_backup.prom")


def send_offsite(settings: dict) -> None:
    """Copy every finished backup and archived binary log the offsite host lacks (names starting with a dot are
    still being written); files already there are never sent again."""
    offsite = settings.get("offsite")
    if not offsite:
        return
    ssh = " ".join(["ssh", *offsite["options"], "-p", str(offsite["port"])])
    proc = subprocess.run(["rsync", "-a", "--ignore-existing", "--exclude", ".*", "-e", ssh, f"{settings['dir']}/",
                           f"{offsite['user']}@{offsite['address']}:{settings['engine']}/"],
                          capture_output=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"offsite copy to {offsite['address']} failed: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    log(f"copied to {offsite['address']}")


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
        mariadb_engine = settings.get("engine") == "mariadb"
        if command in ("scheduled", "archive-binlogs") and is_replica(settings):
            log("skipped: this server is a replica; backups are taken on the primary")
        elif command in ("run", "scheduled"):
            run(settings)
            prune(settings, dt.datetime.now(dt.UTC))  # reckoned after the backup just taken, which must count
            if mariadb_engine:
                archive_binlogs(settings)
                prune_binlogs(settings)
            record_metric(settings)
            send_offsite(settings)
        elif command == "archive-binlogs":
            archive_binlogs(settings)
            send_offsite(settings)
        elif command == "offsite":
            send_offsite(settings)
        elif command == "prune":
            prune(settings, now)
        elif command == "list":
            for when, folder in backups(Path(settings["dir"])):
                print(json.dumps({"name": folder.name, "time": when.isoformat(), "good": is_good(folder)}))
        elif command == "check":
            return 0 if is_good(Path(settings["dir"]) / argv[2]) else 1
        elif command == "stats" and mariadb_engine:
            print(json.dumps(mariadb_stats(mariadb, argv[2]), sort_keys=True))
        elif command == "stats":
            session = psql_session(argv[2], str(settings.get("port", 5432)))
            try:
                print(json.dumps(table_stats(session), sort_keys=True))
            finally:
                session.close()
        elif command == "restore" and mariadb_engine:
            restore_mariadb(settings, argv[2], argv[3], argv[4], option(argv, "--until"))
        elif command == "drop" and mariadb_engine:
            mariadb(f"drop database if exists `{argv[2]}`")
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as exc:  # noqa: BLE001 - cron needs one line and a non-zero status
        log(f"FAILED: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
