"""backups: nightly pg_dump -Fc per database plus globals, sha256-checked, kept 7 daily / 4 weekly / 12 monthly."""

from __future__ import annotations

import json
from typing import Any

from fabstack.role import RoleContext

HANDLERS: dict[str, str] = {}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Retention counts must be positive and the schedule one cron line of five fields."""
    problems = [(key, f"must be at least 1, got {values[key]}")
                for key in ("backups_keep_daily", "backups_keep_weekly", "backups_keep_monthly") if values[key] < 1]
    if len(values["backups_schedule"].split()) != 5:
        problems.append(("backups_schedule", "must be a cron schedule of five fields"))
    return problems


def deploy(ctx: RoleContext) -> None:
    """Declare the backup script, its settings, its folder and the nightly cron job."""
    v = ctx.vars
    settings = {
        "dir": v["backups_dir"],
        "databases": v["backups_databases"] or v["postgresql_databases"],
        "keep": {"daily": v["backups_keep_daily"], "weekly": v["backups_keep_weekly"],
                 "monthly": v["backups_keep_monthly"]},
        "port": v["postgresql_port"],
    }
    ctx.directory(v["backups_dir"], owner="postgres", group="postgres", mode="0750")
    ctx.directory("/etc/fabstack")
    ctx.file("/etc/fabstack/backup.json", json.dumps(settings, indent=2) + "\n")
    script = (ctx.role.path / "files" / "fabstack-backup.py").read_bytes()
    ctx.file("/usr/local/sbin/fabstack-backup", script, mode="0755")
    ctx.cron("backups", v["backups_schedule"],
              "/usr/local/sbin/fabstack-backup scheduled >>/var/log/fabstack-backup.log 2>&1")
