"""pgbouncer_exporter: PgBouncer's clients (active, waiting) and pools for the monitoring hosts."""

from __future__ import annotations

from typing import Any

from fabstack.role import EXPORTER_USER, HOST_LIB, RoleContext
from fabstack.rolecontract import Inbound, for_monitoring

PORTS = ("pgbouncer_exporter_port",)

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart pgbouncer exporter": "systemctl restart fabstack-pgbouncer-exporter",
}

SCRIPT = f"{HOST_LIB}/pgbouncer-exporter.py"
SECRET = "/etc/fabstack-pgbouncer-exporter.secret"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "pgbouncer_exporter_port", what="pgbouncer exporter")


def deploy(ctx: RoleContext) -> None:
    """Declare the exporter script, its account, the stats user's password (root-only) and its service."""
    ctx.user(EXPORTER_USER)
    ctx.file(SCRIPT, (ctx.role.path / "files" / "pgbouncer-exporter.py").read_bytes(), mode="0755",
             notify="restart pgbouncer exporter")
    ctx.template("exporter.secret.j2", SECRET, mode="0600", secret=True, notify="restart pgbouncer exporter")
    ctx.template("fabstack-pgbouncer-exporter.service.j2", "/etc/systemd/system/fabstack-pgbouncer-exporter.service",
                 notify=["reload systemd", "restart pgbouncer exporter"], script=SCRIPT, user=EXPORTER_USER,
                 secret_file=SECRET, address=ctx.facts["primary_address"])
    ctx.service("fabstack-pgbouncer-exporter")
