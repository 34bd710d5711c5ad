"""node_exporter: Debian's prometheus-node-exporter on the private address, open to the monitoring hosts only."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound, for_monitoring

PORTS = ("node_exporter_port",)

HANDLERS = {
    "restart node exporter": "systemctl restart prometheus-node-exporter",
}


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "node_exporter_port", what="node exporter")


def deploy(ctx: RoleContext) -> None:
    """Declare the exporter, its arguments and its service."""
    ctx.packages("prometheus-node-exporter")
    ctx.directory("/var/lib/prometheus/node-exporter")
    ctx.template("prometheus-node-exporter.j2", "/etc/default/prometheus-node-exporter",
                 notify="restart node exporter", address=ctx.facts["primary_address"])
    ctx.service("prometheus-node-exporter")
