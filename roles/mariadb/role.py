"""mariadb: Debian's MariaDB tuned from facts, binary logs in ROW format with GTID, accounts from group_vars, and
the means for a replica to seed itself from whichever host is the primary (a backup stream over SSH)."""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from fabstack.engine import sshkeys, tls
from fabstack.engine.errors import FabstackError
from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, Inbound
from fabstack.engine.settingspec import IDENTIFIER, UNIX_USER, Setting, positive
from fabstack.stack import tuning

GENERATED_SECRETS = ("mariadb_app_password", "mariadb_replication_password", "mariadb_checksum_password",
                     "mariadb_seed_ssh_private_key", "mariadb_tls_self_signed_pem")
PORTS = ("mariadb_port",)

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart mariadb": "systemctl restart mariadb",
}

# The seed account's home, and the stream its forced command runs.
SEED_HOME = "/var/lib/fabstack-seed"
STREAM = "/usr/local/sbin/fabstack-mariadb-backup-stream"
ACCOUNTS_DIGEST = "/var/lib/fabstack/mariadb-accounts.sha256"
CHECKSUM_CNF = "/etc/mysql/fabstack-checksum.cnf"
ROLE_CNF = "/etc/mysql/mariadb.conf.d/61-fabstack-role.cnf"
BOOT_CHECK = "/usr/local/sbin/fabstack-mariadb-boot-check"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """The apps and workers, and the tier's own hosts (replication)."""
    return [Inbound((values["mariadb_port"],), "MariaDB: apps, workers and the tier's replicas",
                    (*values["mariadb_client_groups"], values["mariadb_primary_group"],
                     values["mariadb_replica_group"], values["mariadb_fenced_group"]))]


SETTINGS = {
    # names that go into SQL
    "mariadb_app_user": IDENTIFIER, "mariadb_replication_user": IDENTIFIER, "mariadb_checksum_user": IDENTIFIER,
    "mariadb_databases": Setting(item=IDENTIFIER),
    "mariadb_seed_user": UNIX_USER,
    "mariadb_buffer_pool_share": Setting(least=0.1, most=0.8),
    "mariadb_max_connections": Setting(least=0, most=100_000), "mariadb_app_connections": positive(100_000),
    "mariadb_binlog_expire_days": positive(365),
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """TLS needs the certificate and its key together."""
    if values["mariadb_tls"] and bool(values["mariadb_tls_certificate"]) != bool(values["mariadb_tls_private_key"]):
        missing = "mariadb_tls_private_key" if values["mariadb_tls_certificate"] else "mariadb_tls_certificate"
        return [(missing, "give both mariadb_tls_certificate and mariadb_tls_private_key, or neither")]
    return []


def max_connections(values: dict[str, Any]) -> int:
    """max_connections: configured, or the apps' connections plus the admins'."""
    configured = values["mariadb_max_connections"]
    return configured if configured > 0 else values["mariadb_app_connections"] + values["mariadb_admin_connections"]


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """The buffer pool and the connections' memory, from the host's facts."""
    if facts is None:
        return None
    settings = tuning.mariadb_web(facts["memory_mb"], facts["cpus"], values["mariadb_buffer_pool_share"],
                                  max_connections(values))
    return Commitment(
        computed={"mariadb_tuning": settings},
        memory=[("mariadb buffer pool", settings["innodb_buffer_pool_size_mb"]),
                ("mariadb connections", settings["max_connections"] // 4)],
        memory_key="mariadb_buffer_pool_share",
        summary=f"mariadb   buffer pool {settings['innodb_buffer_pool_size_mb']}MB, max_connections "
                f"{settings['max_connections']}")


def server_id(address: str) -> int:
    """A server_id unique in the tier: the host's IPv4 address as a number (1 for an address that is not one)."""
    try:
        return int(ipaddress.IPv4Address(address)) or 1
    except ValueError:
        return 1


def addresses(ctx: RoleContext, groups: list[str]) -> list[str]:
    """The addresses of every host in the groups, in inventory order, once each."""
    found = []
    for group in groups:
        for name in ctx.groups.get(group, []):
            if ctx.address_of(name) not in found:
                found.append(ctx.address_of(name))
    return found


def tls_files(ctx: RoleContext) -> None:
    """The tier's certificate, key and trusted CA in ``mariadb_tls_dir`` (checked before any host: they parse,
    the key is the certificate's)."""
    v = ctx.vars
    given = bool(v["mariadb_tls_certificate"])
    try:
        pair = tls.parse_pair(v["mariadb_tls_certificate"], v["mariadb_tls_private_key"]) if given else \
            tls.parse_pair(v["mariadb_tls_self_signed_pem"], v["mariadb_tls_self_signed_pem"])
    except tls.TlsError as exc:
        raise FabstackError(str(exc), key="mariadb_tls_certificate" if given else "mariadb_tls_self_signed_pem",
                            host=ctx.host) from None
    try:
        trusted = tls.parse_certificates(v["mariadb_tls_ca"]) if v["mariadb_tls_ca"] else pair.chain
    except tls.TlsError as exc:
        raise FabstackError(str(exc), key="mariadb_tls_ca", host=ctx.host) from None
    folder = v["mariadb_tls_dir"]
    ctx.directory(folder, owner="root", group="mysql", mode="0750")
    ctx.file(f"{folder}/cert.pem", pair.chain, group="mysql", mode="0644", notify="restart mariadb")
    ctx.file(f"{folder}/key.pem", pair.key, group="mysql", mode="0640", secret=True, notify="restart mariadb")
    ctx.file(f"{folder}/ca.pem", trusted, group="mysql", mode="0644",
             notify="restart mariadb")


def deploy(ctx: RoleContext) -> None:
    """Declare the server, its config, (on the primary) the databases and accounts, and the seed source."""
    v = ctx.vars
    tier = [v["mariadb_primary_group"], v["mariadb_replica_group"], v["mariadb_fenced_group"]]
    is_primary = ctx.host in ctx.groups.get(v["mariadb_primary_group"], [])
    ctx.packages("mariadb-server", "mariadb-backup", "percona-toolkit")
    if v["mariadb_tls"]:
        tls_files(ctx)
    ctx.template("fabstack.cnf.j2", "/etc/mysql/mariadb.conf.d/60-fabstack.cnf", notify="restart mariadb",
                 address=ctx.facts["primary_address"], tuning=ctx.computed["mariadb_tuning"],
                 server_id=server_id(ctx.address_of(ctx.host)))
    ctx.template("role.cnf.j2", ROLE_CNF, script=BOOT_CHECK)
    ctx.template("checksum.cnf.j2", CHECKSUM_CNF, mode="0600", secret=True)
    ctx.template("boot-check.sh.j2", BOOT_CHECK, mode="0700", is_primary=is_primary, checksum_cnf=CHECKSUM_CNF,
                 peers=[a for a in addresses(ctx, tier) if a != ctx.address_of(ctx.host)])
    ctx.directory("/etc/systemd/system/mariadb.service.d")
    ctx.template("boot-check.conf.j2", "/etc/systemd/system/mariadb.service.d/60-fabstack-boot-check.conf",
                 script=BOOT_CHECK, notify="reload systemd")
    if ctx.host in ctx.groups.get(v["mariadb_fenced_group"], []):
        # a failed primary stays down until `inv failover rejoin` makes it a replica of the new primary
        ctx.service("mariadb", state="stopped", enabled=None, masked=True)
        return
    ctx.service("mariadb")
    wanted = int(not is_primary)
    ctx.command(f"mariadb --batch -e 'SET GLOBAL read_only = {wanted}'", name=f"read_only {wanted} (live)",
                unless=f"test \"$(mariadb --batch -N -e 'select @@read_only')\" = {wanted}")
    seed_source(ctx, addresses(ctx, tier))
    if not is_primary:
        return
    sql = ctx.render("accounts.sql.j2", client_addresses=addresses(ctx, v["mariadb_client_groups"]),
                     replication_addresses=addresses(ctx, tier))
    digest = hashlib.sha256(sql.encode()).hexdigest()
    ctx.directory("/var/lib/fabstack", mode="0700")
    ctx.command(f"mariadb --batch && echo {digest} > {ACCOUNTS_DIGEST}", name="mariadb databases and accounts",
                unless=f"test \"$(cat {ACCOUNTS_DIGEST} 2>/dev/null)\" = {digest}", stdin=sql)


def seed_source(ctx: RoleContext, tier: list[str]) -> None:
    """Let the tier's hosts pull a consistent copy of this one over SSH: an account whose only command is the
    backup stream (as root through sudo, that script alone), reachable from the tier's addresses only."""
    user = ctx.vars["mariadb_seed_user"]
    public = sshkeys.public_line(ctx.vars["mariadb_seed_ssh_private_key"], f"{user}@{ctx.host}")
    ctx.user(user, shell="/bin/sh", home=SEED_HOME)
    ctx.file(STREAM, (ctx.role.path / "files" / "fabstack-mariadb-backup-stream").read_bytes(), mode="0755")
    ctx.template("sudoers.j2", "/etc/sudoers.d/fabstack-seed", mode="0440", validate="visudo -cq -f %s",
                 seed_user=user, stream=STREAM)
    ctx.directory(f"{SEED_HOME}/.ssh", owner=user, group=user, mode="0700")
    ctx.template("authorized_keys.j2", f"{SEED_HOME}/.ssh/authorized_keys", owner=user, group=user,
                 mode="0600", sources=tier, public_key=public, stream=STREAM)
