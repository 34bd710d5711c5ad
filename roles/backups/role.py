"""backups: a nightly dump per database (PostgreSQL's or MariaDB's, by the host's tier), sha256-checked, kept 7 daily /
4 weekly / 12 monthly; on MariaDB, binary logs archived every few minutes for point-in-time restore."""

from __future__ import annotations

import json
from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import Setting, positive
from fabstack.stack.hostfiles import BACKUP_SCRIPT, BACKUP_SETTINGS
from fabstack.stack.hostssh import client_options

GENERATED_SECRETS = ("backups_offsite_ssh_private_key",)
# root's: the key and the known host the copies to the offsite host use
OFFSITE_FOLDER = "/etc/fabstack/offsite"

HANDLERS: dict[str, str] = {}


SETTINGS = {
    "backups_keep_daily": positive(), "backups_keep_weekly": positive(), "backups_keep_monthly": positive(),
    "backups_schedule": Setting(pattern=r"\S+( \S+){4}", shape="a cron schedule of five fields"),
    "backups_binlog_minutes": Setting(least=1, most=59),
}


def engine(ctx: RoleContext) -> str:
    """The host's db tier: the one whose server role it carries (its settings are then this host's; PostgreSQL
    on a host that has both)."""
    carried = {role.name for role in ctx.host_roles}
    return "mariadb" if "mariadb" in carried and "postgresql" not in carried else "postgresql"


def offsite(ctx: RoleContext) -> dict[str, Any]:
    """Where each backup is copied (the offsite group's one host, its append-only account) and how it is reached:
    the env's generated key, that host's recorded key alone. Declares the key and the known host."""
    group = ctx.vars["backups_offsite_group"]
    names = ctx.groups.get(group, [])
    if len(names) != 1:
        raise FabstackError(f"must name a group of one host, {group!r} has {len(names)}",
                            key="backups_offsite_group", host=ctx.host)
    store = ctx.peer(group)
    if "backup_store_user" not in store:
        raise FabstackError(f"{store['name']} must carry the backup_store role", key="backups_offsite_group",
                            host=ctx.host)
    key, known_hosts = f"{OFFSITE_FOLDER}/id_ed25519", f"{OFFSITE_FOLDER}/known_hosts"
    ctx.packages("rsync")
    ctx.directory(OFFSITE_FOLDER, mode="0700")
    ctx.file(key, ctx.vars["backups_offsite_ssh_private_key"], mode="0600", secret=True)
    ctx.file(known_hosts, "\n".join(ctx.host_key_lines(store["name"])) + "\n")
    return {"address": store["address"], "port": store.get("ansible_port", 22), "user": store["backup_store_user"],
            "options": client_options(key, known_hosts)}


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
    if v["backups_offsite_group"]:
        settings["offsite"] = offsite(ctx)
    ctx.file(BACKUP_SETTINGS, json.dumps(settings, indent=2) + "\n")
    script = (ctx.role.path / "files" / "fabstack-backup.py").read_bytes()
    ctx.file(BACKUP_SCRIPT, script, mode="0755")
    ctx.cron("backups", v["backups_schedule"],
              f"{BACKUP_SCRIPT} scheduled >>/var/log/fabstack-backup.log 2>&1")
    if kind == "mariadb":
        ctx.cron("binlogs", f"*/{v['backups_binlog_minutes']} * * * *",
                  f"{BACKUP_SCRIPT} archive-binlogs >>/var/log/fabstack-backup.log 2>&1")
