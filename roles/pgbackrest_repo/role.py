"""pgbackrest_repo: the backup host's encrypted pgBackRest repository, backing up the db hosts' cluster from its
leader on a schedule and receiving their WAL archive."""

from __future__ import annotations

import re
import shlex
from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound
from fabstack.engine.settingspec import UNIX_USER, Setting, positive
from fabstack.stack.hostfiles import PGBACKREST_CONFIG, PGBACKREST_SSH
from fabstack.stack.hostssh import SSH_PORT
from fabstack.stack.pgbackrest import ssh_trust

METRICS = "/usr/local/sbin/fabstack-pgbackrest-metrics"

GENERATED_SECRETS = ("pgbackrest_repo_cipher_pass", "pgbackrest_repo_ssh_private_key")

_CRON = Setting(pattern=r"\S+( \S+){4}", shape="a cron schedule of five fields")
SETTINGS = {
    "pgbackrest_repo_user": UNIX_USER,
    "pgbackrest_repo_path": Setting(pattern=r"/[A-Za-z0-9_./-]+", shape="an absolute path"),
    "pgbackrest_repo_full_schedule": _CRON, "pgbackrest_repo_diff_schedule": _CRON,
    "pgbackrest_repo_incr_schedule": _CRON,
    "pgbackrest_repo_retention_full": positive(9_999_999), "pgbackrest_repo_retention_diff": positive(9_999_999),
    "pgbackrest_repo_process_max": positive(32),
}


_OPTION = re.compile(r"repo[2-4]-[a-z0-9-]+|archive-[a-z-]+|backup-standby|compress-level")
_VALUE = re.compile(r"[A-Za-z0-9_./:@+=-]{1,512}")


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """SSH from the hosts that push WAL here or restore from here."""
    return [Inbound((SSH_PORT,), "SSH: pgBackRest's WAL pushes and restores",
                    (values["pgbackrest_repo_client_group"],))]


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Extra options name a second to fourth repository (repo2-...) or the archive's and backups' tuning, and
    every value is one plain word (it goes into pgBackRest's settings file as it is)."""
    options = values["pgbackrest_repo_options"]
    if not isinstance(options, dict):
        return [("pgbackrest_repo_options", f"must be a mapping of pgBackRest options, got {options!r}")]
    return [("pgbackrest_repo_options", f"{key!r}: must be repo2-... to repo4-..., archive-..., backup-standby or "
                                        "compress-level with a plain value (letters, digits, _ . / : @ + = -)")
            for key, value in options.items()
            if not _OPTION.fullmatch(str(key)) or not _VALUE.fullmatch(str(value))]


def members(ctx: RoleContext) -> list[str]:
    """The db hosts the repository backs up; refused when none carries the pgbackrest role."""
    names = list(ctx.groups.get(ctx.vars["pgbackrest_repo_db_group"], []))
    if not names or any("pgbackrest_stanza" not in ctx.hostvars[name] for name in names):
        raise FabstackError(f"every host of group {ctx.vars['pgbackrest_repo_db_group']!r} must carry the "
                            "pgbackrest role (and there must be one)", key="pgbackrest_repo_db_group", host=ctx.host)
    return names


def as_repo_user(ctx: RoleContext, command: str) -> str:
    """A pgBackRest command run as the repository's owner (root never writes into the repository)."""
    return f"runuser -u {ctx.vars['pgbackrest_repo_user']} -- pgbackrest {command}"


def deploy(ctx: RoleContext) -> None:
    """Declare the repository, its settings, the SSH trust both ways, the stanza, a first full backup and the
    schedules."""
    v = ctx.vars
    user, path = v["pgbackrest_repo_user"], v["pgbackrest_repo_path"]
    names = members(ctx)
    stanza = ctx.hostvars[names[0]]["pgbackrest_stanza"]
    clients = ctx.groups.get(v["pgbackrest_repo_client_group"], [])
    ctx.packages("pgbackrest")
    ctx.user(user, home=path, shell="/bin/sh")
    ctx.directory(path, owner=user, group=user, mode="0750")
    for folder in ("/var/log/pgbackrest", "/var/spool/pgbackrest"):
        ctx.directory(folder, owner=user, group=user, mode="0750")
    ssh_trust(ctx, user=user, home=path, private_key=v["pgbackrest_repo_ssh_private_key"], reaches=names,
              peer_private_key=ctx.hostvars[names[0]]["pgbackrest_client_ssh_private_key"], reached_by=clients)
    found = [dict(address=ctx.address_of(name), ssh_port=ctx.hostvars[name].get("ansible_port", 22),
                  data=ctx.hostvars[name]["postgresql_data"], port=ctx.hostvars[name]["postgresql_port"])
             for name in names]
    ctx.template("pgbackrest.conf.j2", PGBACKREST_CONFIG, group=user, mode="0640", secret=True, stanza=stanza,
                 members=found, ssh_command=PGBACKREST_SSH, options=sorted(v["pgbackrest_repo_options"].items()))
    s = shlex.quote(stanza)
    ctx.command(as_repo_user(ctx, f"--stanza={s} stanza-create"), creates=f"{path}/backup/{stanza}/backup.info",
                name=f"stanza {stanza}")
    # the first full backup now: a point-in-time restore needs one before the point
    ctx.command(as_repo_user(ctx, f"--stanza={s} --type=full backup"), name="first full backup",
                unless=f"{as_repo_user(ctx, f'--stanza={s} info --output=json')} | grep -q '\"label\"'")
    for kind in ("full", "diff", "incr"):
        ctx.cron(f"pgbackrest-{kind}", v[f"pgbackrest_repo_{kind}_schedule"],
                 f"pgbackrest --stanza={s} --type={kind} backup >>/var/log/pgbackrest/cron.log 2>&1", user=user)
    # when the newest good backup finished, for the BackupTooOld alert
    ctx.file(METRICS, (ctx.role.path / "files" / "fabstack-pgbackrest-metrics").read_bytes(), mode="0755")
    ctx.cron("pgbackrest-metrics", "*/10 * * * *", f"{METRICS} {shlex.quote(user)} >/dev/null 2>&1")

