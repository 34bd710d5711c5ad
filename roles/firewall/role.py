"""firewall: nftables per tier, computed from the roles on each host; validated with `nft -c` before loading."""

from __future__ import annotations

from typing import Any

from fabstack.role import RoleContext

HANDLERS = {
    "load firewall": "nft -f /etc/nftables.conf",
}


def sources(ctx: RoleContext, groups: list[str]) -> list[str]:
    """The /32 of every host in the groups, plus the admin sources."""
    found = []
    for group in groups:
        for name in ctx.groups.get(group, []):
            cidr = f"{ctx.address_of(name)}/32"
            if cidr not in found:
                found.append(cidr)
    return found + [s for s in ctx.vars["firewall_admin_sources"] if s not in found]


def rules(ctx: RoleContext) -> list[dict[str, Any]]:
    """Inbound rules for the services this host runs: port, allowed sources (empty: anywhere), why."""
    v, roles, found = ctx.vars, set(ctx.role_names), []
    apps = v["firewall_app_groups"]
    if "nginx" in roles:
        if v["nginx_site"] == "lb":
            found.append({"ports": [v["nginx_listen_port"], 443], "sources": [], "why": "the load balancer"})
            found.append({"ports": [v["nginx_status_port"]], "sources": sources(ctx, []), "why": "stub_status"})
        else:
            found.append({"ports": [v["nginx_listen_port"]], "sources": sources(ctx, [v["firewall_lb_group"]]),
                          "why": "app behind the load balancer"})
    if "postgresql" in roles:
        found.append({"ports": [v["postgresql_port"]],
                      "sources": sources(ctx, [v["firewall_pgbouncer_group"], v["firewall_db_group"]]),
                      "why": "PostgreSQL: PgBouncer, replication, fencing checks"})
    if "pgbouncer" in roles:
        found.append({"ports": [v["pgbouncer_listen_port"]], "sources": sources(ctx, apps),
                      "why": "PgBouncer: apps and workers"})
    if "redis" in roles:
        found.append({"ports": [v["redis_port"]], "sources": sources(ctx, apps), "why": "Redis: apps and workers"})
    return [r for r in found if r["sources"] or r["why"] == "the load balancer"]


def deploy(ctx: RoleContext) -> None:
    """Declare nftables with this host's rules."""
    ctx.packages("nftables")
    ctx.template("nftables.conf.j2", "/etc/nftables.conf", mode="0755", validate="nft -c -f %s",
                  notify="load firewall", rules=rules(ctx))
    ctx.service("nftables")
