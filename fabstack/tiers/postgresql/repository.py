"""The PostgreSQL tier's pgBackRest repository, as ``inv backup.*`` speaks to it: full, differential and
incremental backups taken from whichever member leads, the WAL archive, and a restore of any archived second
onto a spare host, started there as a new cluster of its own (the repository is the backup host's
``pgbackrest_repo`` role; the ``pgbackrest`` role makes a host a member or a restore target)."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.engine.remote import RemoteHost
from fabstack.stack.hostfiles import PGBACKREST_CONFIG

# The role that holds the repository on the backup host, and the one a member or a restore target carries.
REPOSITORY_ROLE = "pgbackrest_repo"
CLIENT_ROLE = "pgbackrest"
# Roles whose host runs a live member of the tier: never a restore target.
MEMBER_ROLES = ("postgresql", "patroni")
KINDS = ("full", "diff", "incr")
# A restore waits this long, at most, for the restored cluster to finish replaying and accept writes.
RECOVERY_WAIT = 1800
# Databases every cluster has: a target holding others holds somebody's data.
EMPTY_CLUSTER = {"postgres", "template0", "template1"}
# Replaying the archive without the source's connection slots: a restore target is rarely sized like a member,
# and a hot standby refuses to replay for a primary with more max_connections than its own.
RESTORE_CONF = "conf.d/90-fabstack-restored.conf"


def parse_until(until: str) -> dt.datetime:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) as a time; refused otherwise."""
    try:
        return dt.datetime.strptime(until, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        raise FabstackError(f"not a time: {until!r} (YYYY-MM-DD HH:MM:SS, UTC)", key="--until") from None


def when(epoch: int) -> str:
    """A pgBackRest timestamp as a UTC second."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Repository:
    """The backup host's repository: its owner runs every pgBackRest command."""

    host: RemoteHost
    out: Callable[[str], None]

    @property
    def user(self) -> str:
        """The repository's owner."""
        return str(self.host.setup.vars["pgbackrest_repo_user"])

    def pgbackrest(self, *args: str, timeout: float = 3600) -> str:
        """Run pgBackRest on the backup host as the repository's owner; its output."""
        return self.host.run(f"runuser -u {shlex.quote(self.user)} -- pgbackrest {shlex.join(args)}",
                             timeout=timeout)

    def info(self) -> dict[str, Any]:
        """The one stanza's ``pgbackrest info``."""
        stanzas = json.loads(self.pgbackrest("info", "--output=json"))
        if len(stanzas) != 1:
            raise FabstackError(f"expected one stanza in the repository, found {len(stanzas)}", host=self.host.name)
        return dict(stanzas[0])

    @cached_property
    def stanza(self) -> str:
        """The cluster's name in the repository (asked once: it does not change)."""
        return str(self.info()["name"])

    def run(self, kind: str | None) -> None:
        """Take a backup now (``kind`` full, diff or incr; default incremental, full when there is none)."""
        if kind is not None and kind not in KINDS:
            raise FabstackError(f"must be one of {', '.join(KINDS)}, got {kind!r}", key="--kind")
        self.pgbackrest(f"--stanza={self.stanza}", *([f"--type={kind}"] if kind else []), "backup")
        self.show()

    def show(self) -> list[dict[str, Any]]:
        """Print the backups, newest first, and the span of the WAL archive."""
        info = self.info()
        entries = list(reversed(info.get("backup", [])))
        self.out(f"{'LABEL':<26}{'TYPE':<6}{'STARTED (UTC)':<21}{'TOOK':>6}{'SIZE':>12}{'STORED':>12}")
        for b in entries:
            took = b["timestamp"]["stop"] - b["timestamp"]["start"]
            self.out(f"{b['label']:<26}{b['type']:<6}{when(b['timestamp']['start']):<21}{took:>5}s"
                     f"{b['info']['size']:>12}{b['info']['repository']['delta']:>12}")
        if not entries:
            self.out("no backups yet")
        for archive in info.get("archive", []):
            self.out(f"WAL archive {archive['id']}: {archive.get('min')} to {archive.get('max')}")
        self.out(f"status: {info['status']['message']}")
        return entries

    def verify(self) -> bool:
        """``pgbackrest check`` (the leader's WAL reaches the archive now) and ``pgbackrest verify`` (every file
        in the repository matches its checksum). True when both pass."""
        ok = True
        for command in ("check", "verify"):
            try:
                self.pgbackrest(f"--stanza={self.stanza}", command)
                self.out(f"pgbackrest {command}: ok")
            except FabstackError as exc:
                ok = False
                self.out(f"pgbackrest {command}: FAILED: {exc.message}")
        self.out("backup verified" if ok else "backup DOES NOT PASS its checks")
        return ok

    def restore(self, target: RemoteHost, until: str | None, label: str | None, force: bool) -> dict[str, Any]:
        """Restore the cluster on ``target`` (a spare host with the pgbackrest role) through ``until`` (every
        transaction committed by then, none after; default: all that was archived) from backup ``label`` (default:
        the newest one before ``until``), and start it as a new cluster. Returns what was restored. ``until`` is
        checked by the caller (``parse_until``) before any host is touched."""
        info = self.info()
        stanza, version = str(info["name"]), str(info["db"][-1]["version"])
        data = shlex.quote(str(self._pg_path(target)))
        cluster = f"{version} main"
        existing = self._databases(target, version)
        if existing - EMPTY_CLUSTER and not force:
            raise FabstackError(f"its cluster holds databases ({', '.join(sorted(existing - EMPTY_CLUSTER))}): "
                                "restoring over them needs --force", key="--target", host=target.name)
        options = [f"--stanza={stanza}", "--delta"]
        if until is not None:
            options += ["--type=time", f"--target={until}+00", "--target-action=promote"]
        if label is not None:
            options.append(f"--set={label}")
        etc = f"/etc/postgresql/{version}/main"
        started = time.monotonic()
        target.run(f"pg_lsclusters -h | grep -q '^{version} main ' || pg_createcluster {cluster}", timeout=120)
        target.run(f"pg_ctlcluster {cluster} stop -m fast 2>/dev/null; "
                   f"systemctl stop postgresql@{version}-main 2>/dev/null; true", timeout=120)
        target.run(f"runuser -u postgres -- pgbackrest {shlex.join(options)} --pg1-path={data} restore",
                   timeout=RECOVERY_WAIT)
        # written as postgres: the folder is the service account's, and root follows no link there
        target.run(f"runuser -u postgres -- sh -c 'echo \"hot_standby = off\" > {etc}/{RESTORE_CONF}'")
        target.run(f"systemctl start postgresql@{version}-main", timeout=RECOVERY_WAIT)
        target.run(f"for i in $(seq {RECOVERY_WAIT}); do test \"$(runuser -u postgres -- psql -X -qAt -c "
                   f"'select pg_is_in_recovery()' 2>/dev/null)\" = f && exit 0; sleep 1; done; "
                   f"echo 'still replaying after {RECOVERY_WAIT} s' >&2; exit 1", timeout=RECOVERY_WAIT + 60)
        took = time.monotonic() - started
        replayed = target.run("runuser -u postgres -- psql -X -qAt -c \"select coalesce(to_char("
                              "pg_last_xact_replay_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '')\"")
        databases = sorted(self._databases(target, version) - EMPTY_CLUSTER)
        self.out(f"restored {stanza} onto {target.name} ({', '.join(databases)}) "
                 + (f"through {until} UTC" if until else "through the newest archived WAL")
                 + f", last transaction {replayed or 'none'} UTC, in {took:.1f} s; it runs as a new cluster "
                 "(archiving nothing)")
        return {"databases": databases, "last_transaction": replayed, "seconds": round(took, 1)}

    def _pg_path(self, target: RemoteHost) -> str:
        """The data folder the target's pgBackRest settings name."""
        line = target.run(f"sed -n 's/^pg1-path=//p' {PGBACKREST_CONFIG}")
        if not line.startswith("/"):
            raise FabstackError(f"no pg1-path in {PGBACKREST_CONFIG}: deploy the pgbackrest role there first",
                                host=target.name)
        return line.splitlines()[0]

    @staticmethod
    def _databases(target: RemoteHost, version: str) -> set[str]:
        """The databases of the target's running cluster (none when it is not running)."""
        listed = target.run(f"pg_ctlcluster {version} main status >/dev/null 2>&1 && runuser -u postgres -- "
                            "psql -X -qAt -c 'select datname from pg_database' || true")
        return set(listed.split())
