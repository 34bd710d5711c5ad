"""pgbackrest: a db host archives its WAL to the backup host's pgBackRest repository whenever it is the leader, and
lets the repository host in to take backups; a host without the tier's server is a restore target."""

from __future__ import annotations

from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound
from fabstack.engine.settingspec import IDENTIFIER, Setting, positive
from fabstack.stack.hostfiles import PGBACKREST_CONFIG, PGBACKREST_SSH
from fabstack.stack.hostssh import SSH_PORT
from fabstack.stack.pgbackrest import ssh_trust

# A db host's cluster settings (its data folder, port and version) are the postgresql role's.
READS = ("postgresql",)

GENERATED_SECRETS = ("pgbackrest_client_ssh_private_key",)

SETTINGS = {
    "pgbackrest_stanza": IDENTIFIER,
    "pgbackrest_archive_timeout": Setting(least=10, most=3600),
    "pgbackrest_archive_queue_max": Setting(pattern=r"[0-9]+(KiB|MiB|GiB|TiB)?", shape="a size such as 4GiB"),
    "pgbackrest_process_max": positive(32),
}


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """SSH from the repository host, which takes the backups from here."""
    return [Inbound((SSH_PORT,), "SSH: pgBackRest's repository host takes backups", (values["pgbackrest_repo_group"],))]


def repository(ctx: RoleContext) -> dict[str, Any]:
    """The repository host's name, address and settings; refused when the group does not hold exactly one."""
    names = ctx.groups.get(ctx.vars["pgbackrest_repo_group"], [])
    if len(names) != 1:
        raise FabstackError(f"must name a group of one host, {ctx.vars['pgbackrest_repo_group']!r} has {len(names)}",
                            key="pgbackrest_repo_group", host=ctx.host)
    return ctx.peer(ctx.vars["pgbackrest_repo_group"])


def cluster(ctx: RoleContext, repo: dict[str, Any]) -> dict[str, Any]:
    """The cluster this host archives or restores: its own (a db host), or the tier's (a restore target, named
    after the first host the repository backs up)."""
    if "postgresql" in {role.name for role in ctx.host_roles}:
        return ctx.vars
    members = ctx.groups.get(repo["pgbackrest_repo_db_group"], [])
    if not members:
        raise FabstackError(f"group {repo['pgbackrest_repo_db_group']!r} is empty: no cluster to restore",
                            key="pgbackrest_repo_db_group", host=repo["name"])
    return ctx.hostvars[members[0]]


def deploy(ctx: RoleContext) -> None:
    """Declare pgBackRest, its settings pointing at the repository host, and the SSH trust both ways."""
    v = ctx.vars
    repo = repository(ctx)
    pg = cluster(ctx, repo)
    packages = ["pgbackrest"]
    if "postgresql" not in {role.name for role in ctx.host_roles}:
        packages.append(f"postgresql-{pg['postgresql_version']}")  # a restore target runs the restored cluster
    ctx.packages(*packages)
    ssh_trust(ctx, user="postgres", home="/var/lib/postgresql", private_key=v["pgbackrest_client_ssh_private_key"],
              reaches=[repo["name"]], peer_private_key=repo["pgbackrest_repo_ssh_private_key"],
              reached_by=[repo["name"]])
    for folder in ("/var/log/pgbackrest", "/var/spool/pgbackrest"):
        ctx.directory(folder, owner="postgres", group="postgres", mode="0750")
    ctx.template("pgbackrest.conf.j2", PGBACKREST_CONFIG, group="postgres", mode="0640", repo_name=repo["name"],
                 repo_address=repo["address"], repo_user=repo["pgbackrest_repo_user"],
                 repo_ssh_port=repo.get("ansible_port", 22), ssh_command=PGBACKREST_SSH,
                 data=pg["postgresql_data"], port=pg["postgresql_port"])
