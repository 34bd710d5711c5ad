"""backup_store: an append-only copy of every db host's backups on a host of their own."""

from __future__ import annotations

import shlex
from typing import Any

from fabstack.engine import sshkeys
from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound
from fabstack.engine.settingspec import UNIX_USER, Setting
from fabstack.stack.hostssh import SSH_PORT, authorized_line

SETTINGS = {
    "backup_store_user": UNIX_USER,
    "backup_store_dir": Setting(pattern=r"/[A-Za-z0-9_./-]+", shape="an absolute path"),
    "backup_store_keep_days": Setting(least=1, most=36_500),
}

# What the db hosts' key may run here, whatever they ask: rsync into the store, adding files only.
RRSYNC = "/usr/bin/rrsync -wo -no-del -no-overwrite"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """SSH from the db hosts that send their backups' copies."""
    return [Inbound((SSH_PORT,), "SSH: the db hosts' backup copies", tuple(values["backup_store_client_groups"]))]


def senders(ctx: RoleContext) -> list[str]:
    """The hosts that may send copies: those of the client groups."""
    names: list[str] = []
    for group in ctx.vars["backup_store_client_groups"]:
        names += [name for name in ctx.groups.get(group, []) if name not in names]
    return names


def deploy(ctx: RoleContext) -> None:
    """Declare the account, its folder, the one key it admits (from the senders' addresses, forced into
    rrsync) and the pruning of old copies."""
    v = ctx.vars
    user, folder = v["backup_store_user"], v["backup_store_dir"]
    names = senders(ctx)
    keys = [ctx.hostvars[name]["backups_offsite_ssh_private_key"] for name in names
            if "backups_offsite_ssh_private_key" in ctx.hostvars[name]]
    home = f"/var/lib/{user}"
    ctx.packages("rsync")
    ctx.user(user, home=home, shell="/bin/sh")
    # The account's home and its keys are root's, and the copies live elsewhere: nothing a sender writes through
    # rrsync can become a key sshd reads (authorized_keys2 included).
    ctx.directory(home)
    ctx.directory(f"{home}/.ssh")
    line = authorized_line(sshkeys.public_line(keys[0], "fabstack-offsite"), [ctx.address_of(n) for n in names],
                           f"{RRSYNC} {folder}") if keys else ""
    ctx.file(f"{home}/.ssh/authorized_keys", line)
    ctx.directory(folder, owner=user, group=user, mode="0700")
    quoted = shlex.quote(folder)
    ctx.cron("backup-store-prune", "40 4 * * *",
             f"find {quoted} -mindepth 2 -type f -mtime +{v['backup_store_keep_days']} -delete; "
             f"find {quoted} -mindepth 2 -type d -empty -delete", user=user)
