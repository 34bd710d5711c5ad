"""etcd: Debian's etcd as a cluster of the etcd group's hosts (an odd count, three or more) on their private
addresses, the store that holds Patroni's leader lease."""

from __future__ import annotations

from typing import Any

from fabstack.engine.errors import FabstackError
from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound
from fabstack.engine.settingspec import TCP_PORT, Setting, positive
from fabstack.stack.clustertls import CA_SETTING, declare_tls

PORTS = ("etcd_client_port", "etcd_peer_port")

# The env's cluster CA: members and their clients authenticate each other with certificates it issued.
GENERATED_SECRETS = (CA_SETTING,)
TLS = "/etc/etcd/tls"

HANDLERS = {
    # a member joining a cluster whose others are not up yet waits for them: the unit's own start timeout bounds it
    "restart etcd": "systemctl restart etcd",
}

SETTINGS = {
    "etcd_client_port": TCP_PORT, "etcd_peer_port": TCP_PORT,
    "etcd_cluster_token": Setting(pattern=r"[A-Za-z0-9_-]{1,64}", shape="letters, digits, - and _"),
    "etcd_heartbeat_ms": positive(10_000), "etcd_election_ms": positive(60_000),
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The election timeout must outlast several heartbeats, and the two ports differ."""
    problems = []
    if values["etcd_election_ms"] < 5 * values["etcd_heartbeat_ms"]:
        problems.append(("etcd_election_ms", f"must be at least five heartbeats ({5 * values['etcd_heartbeat_ms']} "
                                             f"ms), got {values['etcd_election_ms']}"))
    if values["etcd_client_port"] == values["etcd_peer_port"]:
        problems.append(("etcd_peer_port", "must differ from etcd_client_port"))
    return problems


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Clients (Patroni) and the other members reach the client port; members alone the peer port."""
    return [Inbound((values["etcd_client_port"],), "etcd: Patroni and the other members",
                    (values["etcd_group"], *values["etcd_client_groups"])),
            Inbound((values["etcd_peer_port"],), "etcd: the other members", (values["etcd_group"],))]


def members(ctx: RoleContext) -> list[str]:
    """The cluster's members, in inventory order (the same list on every member)."""
    return list(ctx.groups.get(ctx.vars["etcd_group"], []))


def deploy(ctx: RoleContext) -> None:
    """Declare the package, the member's settings and its service; refuse a cluster without a majority to spare."""
    v = ctx.vars
    names = members(ctx)
    if len(names) < 3 or len(names) % 2 == 0:
        raise FabstackError(f"etcd needs an odd number of members, three or more, so that losing one leaves a "
                            f"majority; group {v['etcd_group']} has {len(names)}", key="etcd_group", host=ctx.host)
    ctx.packages("etcd-server", "etcd-client")
    ctx.directory(v["etcd_data_dir"], owner="etcd", group="etcd", mode="0700")
    declare_tls(ctx, TLS, "etcd", v[CA_SETTING], notify="restart etcd")
    ctx.template("etcd.j2", "/etc/default/etcd", notify="restart etcd", name=ctx.host,
                 address=ctx.facts["primary_address"], tls=TLS,
                 members=[f"{name}=https://{ctx.address_of(name)}:{v['etcd_peer_port']}" for name in names])
    ctx.service("etcd")
