"""redis_exporter: Redis's memory and the apps' queue depths on the private address, for the monitoring hosts."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound, for_monitoring
from fabstack.engine.settingspec import Setting

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("redis",)

PORTS = ("redis_exporter_port",)

HANDLERS = {
    "restart redis exporter": "systemctl restart prometheus-redis-exporter",
}


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "redis_exporter_port", what="redis exporter")


# Queue keys the exporter's comma-separated flag can carry.
SETTINGS = {"redis_exporter_queue_keys": Setting(item=Setting(pattern=r"[A-Za-z0-9:_.@-]+",
                                                              shape="a key of letters, digits and : _ . @ -"))}


def deploy(ctx: RoleContext) -> None:
    """Declare the exporter with its arguments and credentials."""
    ctx.packages("prometheus-redis-exporter")
    ctx.template("prometheus-redis-exporter.j2", "/etc/default/prometheus-redis-exporter", group="prometheus",
                 mode="0640", secret=True, notify="restart redis exporter", address=ctx.facts["primary_address"],
                 single_keys=",".join(f"db0={key}" for key in ctx.vars["redis_exporter_queue_keys"]))
    ctx.service("prometheus-redis-exporter")
