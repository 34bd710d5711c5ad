"""php_fpm_exporter: the app pool's status page (children, listen queue) for the monitoring hosts."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound, for_monitoring
from fabstack.stack.ownexporter import own_exporter

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("php", "php_fpm")

PORTS = ("php_fpm_exporter_port",)

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart php-fpm exporter": "systemctl restart fabstack-php-fpm-exporter",
}


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "php_fpm_exporter_port", what="php-fpm exporter")


def deploy(ctx: RoleContext) -> None:
    """Declare the exporter (fabstack's own; its unit puts it in www-data's group for the pool's socket)."""
    own_exporter(ctx, "php-fpm", max_children=ctx.computed["php_fpm_max_children"])
