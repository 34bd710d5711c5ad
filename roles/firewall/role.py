"""firewall: nftables per host, opening what each of its roles declares (``inbound``); validated with `nft -c`."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import positive

HANDLERS = {
    "load firewall": "nft -f /etc/nftables.conf",
}


# The SSH rate needs room for fabstack's own connections.
SETTINGS = {"firewall_ssh_rate": positive(1000), "firewall_ssh_burst": positive(1000)}


def sources(ctx: RoleContext, groups: tuple[str, ...]) -> list[str]:
    """The /32 of every host in the groups, plus the admin sources."""
    found = []
    for group in groups:
        for name in ctx.groups.get(group, []):
            cidr = f"{ctx.address_of(name)}/32"
            if cidr not in found:
                found.append(cidr)
    return found + [s for s in ctx.vars["firewall_admin_sources"] if s not in found]


def rules(ctx: RoleContext) -> list[dict[str, Any]]:
    """Inbound rules for what this host's roles declare they listen on: ports, allowed sources (empty: anywhere),
    why. A port only admins may reach is left closed while there are no admin sources."""
    found = []
    for role in ctx.host_roles:
        for entry in role.inbound(ctx.vars):
            allowed = [] if entry.anywhere else sources(ctx, entry.groups)
            if entry.anywhere or allowed:
                found.append({"ports": list(entry.ports), "sources": allowed, "why": entry.why})
    return found


def deploy(ctx: RoleContext) -> None:
    """Declare nftables with this host's rules."""
    ctx.packages("nftables")
    ctx.template("nftables.conf.j2", "/etc/nftables.conf", mode="0755", validate="nft -c -f %s",
                  notify="load firewall", rules=rules(ctx))
    ctx.service("nftables")
