"""backups: a nightly dump per database (PostgreSQL's or MariaDB's, by the host's tier), sha256-checked, kept 7 daily /
4 weekly / 12 monthly; on MariaDB, binary logs archived every few minutes for point-in-time restore."""

from __future__ import annotations

import json
from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.stack.hostfiles import BACKUP_SCRIPT, BACKUP_SETTINGS

HANDLERS: dict[str, str] = {}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Retention counts must be positive and the schedule one cron line of five fields."""
    problems = [(key, f"must be at least 1, got {values[key]}")
                for key in ("backups_keep_daily", "backups_keep_weekly", "backups_keep_monthly") if values[key] < 1]
    if len(values["backups_schedule"].split()) != 5:
        problems.append(("backups_schedule", "must be a cron schedule of five fields"))
    if not 1 <= values["backups_binlog_minutes"] <= 59:
        problems.append(("backups_binlog_minutes", "must be from 1 to 59"))
    return problems


def engine(ctx: RoleContext) -> str:
    """The host's db tier: the one whose server role it carries (its settings are then this host's; PostgreSQL
    on a host that has both)."""
    return "mariadb" if "mariadb_databases" in ctx.vars and "postgresql_databases" not in ctx.vars else "postgresql"


def deploy(ctx: RoleContext) -> None:
    """Declare the backup script, its settings, its folder and the cron jobs."""
    v = ctx.vars
    kind = engine(ctx)
    folder = v["backups_dir"] or f"/var/backups/{kind}"
    settings = {
        "engine": kind,
        "dir": folder,
        "databases": v["backups_databases"] or v[f"{kind}_databases"],
        "keep": {"daily": v["backups_keep_daily"], "weekly": v["backups_keep_weekly"],
                 "monthly": v["backups_keep_monthly"]},
        "port": v[f"{kind}_port"],
    }
    # root's alone: the database clients write to descriptors root opens, so no service account can plant a link
    ctx.directory(folder, owner="root", group="root", mode="0750")
    ctx.directory("/etc/fabstack")
    ctx.file(BACKUP_SETTINGS, json.dumps(settings, indent=2) + "\n")
    script = (ctx.role.path / "files" / "fabstack-backup.py").read_bytes()
    ctx.file(BACKUP_SCRIPT, script, mode="0755")
    ctx.cron("backups", v["backups_schedule"],
              f"{BACKUP_SCRIPT} scheduled >>/var/log/fabstack-backup.log 2>&1")
    if kind == "mariadb":
        ctx.cron("binlogs", f"*/{v['backups_binlog_minutes']} * * * *",
                  f"{BACKUP_SCRIPT} archive-binlogs >>/var/log/fabstack-backup.log 2>&1")
