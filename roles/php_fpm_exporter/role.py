"""php_fpm_exporter: the app pool's status page (children, listen queue) for the monitoring hosts."""

from __future__ import annotations

from typing import Any

from fabstack.role import EXPORTER_USER, HOST_LIB, RoleContext
from fabstack.rolecontract import Inbound, for_monitoring

PORTS = ("php_fpm_exporter_port",)

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart php-fpm exporter": "systemctl restart fabstack-php-fpm-exporter",
}

SCRIPT = f"{HOST_LIB}/php-fpm-exporter.py"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "php_fpm_exporter_port", what="php-fpm exporter")


def deploy(ctx: RoleContext) -> None:
    """Declare the exporter script, its account and its service (in www-data's group for the pool's socket)."""
    ctx.user(EXPORTER_USER)
    ctx.file(SCRIPT, (ctx.role.path / "files" / "php-fpm-exporter.py").read_bytes(), mode="0755",
             notify="restart php-fpm exporter")
    ctx.template("fabstack-php-fpm-exporter.service.j2", "/etc/systemd/system/fabstack-php-fpm-exporter.service",
                 notify=["reload systemd", "restart php-fpm exporter"], script=SCRIPT, user=EXPORTER_USER,
                 address=ctx.facts["primary_address"], max_children=ctx.computed["php_fpm_max_children"])
    ctx.service("fabstack-php-fpm-exporter")
