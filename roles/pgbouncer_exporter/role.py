"""pgbouncer_exporter: PgBouncer's clients (active, waiting) and pools for the monitoring hosts."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound, for_monitoring
from fabstack.stack.ownexporter import own_exporter

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("pgbouncer",)

PORTS = ("pgbouncer_exporter_port",)

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart pgbouncer exporter": "systemctl restart fabstack-pgbouncer-exporter",
}

SECRET = "/etc/fabstack-pgbouncer-exporter.secret"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "pgbouncer_exporter_port", what="pgbouncer exporter")


def deploy(ctx: RoleContext) -> None:
    """Declare the stats user's password (root-only), then the exporter (fabstack's own)."""
    ctx.template("exporter.secret.j2", SECRET, mode="0600", secret=True, notify="restart pgbouncer exporter")
    own_exporter(ctx, "pgbouncer", secret_file=SECRET)
