"""postgres_exporter: PostgreSQL's connections and replication (lag, streaming, slots) for the monitoring hosts."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound, for_monitoring
from fabstack.engine.settingspec import IDENTIFIER

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("postgresql",)

PORTS = ("postgres_exporter_port",)

HANDLERS = {
    "restart postgres exporter": "systemctl reset-failed prometheus-postgres-exporter; "
                                 "systemctl restart prometheus-postgres-exporter",
}

QUERIES = "/etc/prometheus/postgres-exporter-queries.yaml"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "postgres_exporter_port", what="postgres exporter")


SETTINGS = {"postgres_exporter_user": IDENTIFIER}  # written into SQL


def deploy(ctx: RoleContext) -> None:
    """Declare the exporter, its queries, and (on the primary, whence it replicates) its pg_monitor login role."""
    v = ctx.vars
    user = v["postgres_exporter_user"]
    ctx.packages("prometheus-postgres-exporter")
    ctx.directory("/etc/prometheus")
    ctx.file(QUERIES, (ctx.role.path / "files" / "queries.yaml").read_bytes(), notify="restart postgres exporter")
    ctx.template("prometheus-postgres-exporter.j2", "/etc/default/prometheus-postgres-exporter",
                 notify="restart postgres exporter", address=ctx.facts["primary_address"], queries=QUERIES)
    if ctx.host in ctx.groups.get(v["postgresql_primary_group"], []):
        ctx.sql("postgres", name=f"monitoring role {user}",
                unless_query=f"select count(*) from pg_roles r join pg_auth_members m on m.member = r.oid "
                             f"join pg_roles g on g.oid = m.roleid where r.rolname = '{user}' "
                             f"and g.rolname = 'pg_monitor'", equals="1",
                statements=f"select 'create role {user} login' where not exists "
                           f"(select from pg_roles where rolname = '{user}')\\gexec\n"
                           f"grant pg_monitor to {user};\n")
    ctx.service("prometheus-postgres-exporter")
