"""TLS inside a Patroni cluster: one certificate authority per env (generated, held by the etcd role's settings)
that etcd's members, Patroni's REST API and their clients trust alone, and each host's own certificate for its
addresses, issued from it on the controller the same way at every deploy."""

from __future__ import annotations

from fabstack.engine.errors import FabstackError
from fabstack.engine.role import RoleContext
from fabstack.engine.tls import ca_certificate, issued_pair

# The generated setting holding the CA's key and certificate.
CA_SETTING = "etcd_tls_ca_pem"


def cluster_ca_pem(ctx: RoleContext, etcd_group: str) -> str:
    """The env's cluster CA (key and certificate): this host's own value when it is an etcd member, else the
    first member's."""
    if CA_SETTING in ctx.vars:
        return str(ctx.vars[CA_SETTING])
    members = ctx.groups.get(etcd_group, [])
    if not members or CA_SETTING not in ctx.hostvars[members[0]]:
        raise FabstackError(f"group {etcd_group!r} has no etcd member to take the cluster's CA from",
                            key="patroni_etcd_group", host=ctx.host)
    return str(ctx.hostvars[members[0]][CA_SETTING])


def declare_tls(ctx: RoleContext, folder: str, owner: str, ca_pem: str, *, notify: str | None = None) -> None:
    """The CA's certificate, and this host's certificate and key (for its private address and loopback), in
    ``folder`` (root's, readable by ``owner``'s group; the key ``owner``'s alone)."""
    pair = issued_pair(ca_pem, ctx.host, [ctx.facts["primary_address"], "127.0.0.1"])
    ctx.directory(folder, owner="root", group=owner, mode="0750")
    ctx.file(f"{folder}/ca.crt", ca_certificate(ca_pem), notify=notify)
    ctx.file(f"{folder}/member.crt", pair.chain, notify=notify)
    ctx.file(f"{folder}/member.key", pair.key, owner=owner, group=owner, mode="0600", secret=True, notify=notify)
