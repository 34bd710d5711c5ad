"""pgbouncer: transaction pooling, rw entry -> primary and ro entry -> replica, scram auth, limits from the budget."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound
from fabstack.engine.settingspec import IDENTIFIER, TCP_PORT, Setting, positive

# Roles whose settings this role reads when the host runs them too (the firewall asks for inbound ports).
READS = ("firewall", "haproxy")

GENERATED_SECRETS = ("postgresql_app_password", "pgbouncer_admin_password", "pgbouncer_stats_password")

# Settings holding TCP ports this role listens on: the engine refuses two roles sharing one on a host.
PORTS = ("pgbouncer_listen_port",)

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    # back only once it accepts connections again (bounded: 30 s)
    "restart pgbouncer": "systemctl restart pgbouncer && for i in $(seq 150); do "
                         "pg_isready -q -h 127.0.0.1 -p {{ pgbouncer_listen_port }} && break; sleep 0.2; done",
    "reload pgbouncer": "systemctl reload pgbouncer",
}


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """PgBouncer is reached by the apps and the workers."""
    return [Inbound((values["pgbouncer_listen_port"],), "PgBouncer: apps and workers",
                    tuple(values["firewall_app_groups"]))]


SETTINGS = {
    "pgbouncer_listen_port": TCP_PORT, "pgbouncer_max_client_conn": positive(1_000_000),
    "pgbouncer_default_pool_size": positive(10_000), "pgbouncer_reserve_pool_size": Setting(least=0, most=10_000),
    # console users are written into the user list
    "pgbouncer_admin_user": IDENTIFIER, "pgbouncer_stats_user": IDENTIFIER,
}


def address_of(ctx: RoleContext, name: str) -> str:
    """A host's address from the inventory."""
    return str(ctx.hostvars[name].get("ansible_host", name)) if name else "127.0.0.1"


def deploy(ctx: RoleContext) -> None:
    """Declare PgBouncer's package, config, user list, file limit and service."""
    computed = ctx.computed
    primary = ctx.hostvars[computed["pgbouncer_primary"]]
    # psql of the servers' own major version, for checks through the pooler
    ctx.packages("pgbouncer", f"postgresql-client-{primary['postgresql_version']}")
    ctx.directory("/etc/systemd/system/pgbouncer.service.d")
    ctx.template("limits.conf.j2", "/etc/systemd/system/pgbouncer.service.d/60-fabstack.conf",
                  nofile=computed["pgbouncer_nofile"], notify=["reload systemd", "restart pgbouncer"])
    ctx.template("userlist.txt.j2", "/etc/pgbouncer/userlist.txt", owner="postgres", group="postgres",
                  mode="0640", secret=True, notify="reload pgbouncer")
    if "haproxy" in {role.name for role in ctx.host_roles}:
        # HAProxy beside it follows the leader Patroni names: the entries never change on a failover
        routes = {"primary": "127.0.0.1", "replica": "127.0.0.1", "rw_port": ctx.vars["haproxy_rw_port"],
                  "ro_port": ctx.vars["haproxy_ro_port"]}
    else:
        routes = {"primary": address_of(ctx, computed["pgbouncer_primary"]),
                  "replica": address_of(ctx, computed["pgbouncer_replica"]),
                  "rw_port": primary["postgresql_port"], "ro_port": primary["postgresql_port"]}
    ctx.template("pgbouncer.ini.j2", "/etc/pgbouncer/pgbouncer.ini", owner="postgres", group="postgres",
                  mode="0640", notify="reload pgbouncer", listen=["127.0.0.1", ctx.facts["primary_address"]],
                  **routes)
    ctx.service("pgbouncer")
