"""nginx_exporter: the load balancer's connections (stub_status) and, per app, requests by status and latency from
its access log (mtail), on the private address for the monitoring hosts only."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound, for_monitoring

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("nginx",)

PORTS = ("nginx_exporter_port", "nginx_log_exporter_port")

HANDLERS = {
    "restart nginx exporter": "systemctl restart prometheus-nginx-exporter",
    "restart mtail": "systemctl restart mtail",
}


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Scraped by the monitoring hosts alone."""
    return for_monitoring(values, "nginx_exporter_port", "nginx_log_exporter_port", what="nginx exporters")


def deploy(ctx: RoleContext) -> None:
    """Declare both exporters, the log program and their services."""
    address = ctx.facts["primary_address"]
    ctx.packages("prometheus-nginx-exporter", "mtail")
    ctx.template("prometheus-nginx-exporter.j2", "/etc/default/prometheus-nginx-exporter",
                 notify="restart nginx exporter", address=address)
    ctx.service("prometheus-nginx-exporter")
    # mtail reads nginx's log, which is readable by group adm
    ctx.command("usermod -a -G adm mtail", unless="id -nG mtail | grep -qw adm", name="mtail reads nginx's log",
                notify="restart mtail")
    ctx.directory("/etc/mtail")
    ctx.file("/etc/mtail/nginx.mtail", (ctx.role.path / "files" / "nginx.mtail").read_bytes(),
             validate="mtail --compile_only --progs %s", notify="restart mtail")
    ctx.template("mtail.j2", "/etc/default/mtail", notify="restart mtail", address=address)
    ctx.service("mtail")
