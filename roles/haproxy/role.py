"""haproxy: Debian's HAProxy beside PgBouncer, routing its read-write entry to whichever db host Patroni says
leads (REST /primary) and its read-only entry to the replicas within a lag bound, on loopback only."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import TCP_PORT, Setting, positive
from fabstack.engine.tls import ca_certificate
from fabstack.stack.clustertls import cluster_ca_pem

PORTS = ("haproxy_rw_port", "haproxy_ro_port")

CA_FILE = "/etc/haproxy/patroni-ca.crt"

HANDLERS = {
    # a reload hands the listening sockets to new processes: no connection is refused meanwhile
    "reload haproxy": "systemctl reload haproxy",
}

SETTINGS = {
    "haproxy_rw_port": TCP_PORT, "haproxy_ro_port": TCP_PORT,
    "haproxy_replica_max_lag_bytes": Setting(least=0),
    "haproxy_check_interval_ms": Setting(least=100, most=60_000),
    "haproxy_fall": positive(100), "haproxy_rise": positive(100), "haproxy_maxconn": positive(1_000_000),
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The two routes need two ports."""
    if values["haproxy_rw_port"] == values["haproxy_ro_port"]:
        return [("haproxy_ro_port", "must differ from haproxy_rw_port")]
    return []


def members(ctx: RoleContext) -> list[dict[str, Any]]:
    """The db hosts behind the routes: name, address, PostgreSQL's port and Patroni's REST port."""
    return [{"name": name, "address": ctx.address_of(name), "port": ctx.hostvars[name]["postgresql_port"],
             "rest_port": ctx.hostvars[name]["patroni_rest_port"]}
            for name in ctx.groups.get(ctx.vars["haproxy_db_group"], [])]


def deploy(ctx: RoleContext) -> None:
    """Declare HAProxy, its routes (checked by haproxy -c before they take effect) and its service."""
    ctx.packages("haproxy")
    if ctx.facts.get("container"):
        # Debian's unit binds /dev/log into the chroot in a mount namespace of its own, which a container may not
        # create (status 226/NAMESPACE); a VM keeps the unit as Debian ships it
        ctx.directory("/etc/systemd/system/haproxy.service.d")
        ctx.file("/etc/systemd/system/haproxy.service.d/60-fabstack-container.conf",
                 f"# {ctx.vars_managed()}\n[Service]\nBindReadOnlyPaths=\n")
    found = members(ctx)
    if found:
        # the members' REST API answers over HTTPS: checked against the cluster's CA alone
        group = ctx.hostvars[found[0]["name"]]["patroni_etcd_group"]
        ctx.file(CA_FILE, ca_certificate(cluster_ca_pem(ctx, group)), notify="reload haproxy")
    ctx.template("haproxy.cfg.j2", "/etc/haproxy/haproxy.cfg", validate="haproxy -c -q -f %s",
                 notify="reload haproxy", members=found, ca_file=CA_FILE)
    ctx.service("haproxy")
