"""patroni: Patroni runs the host's PostgreSQL cluster (the postgresql role's) with its leader lease in etcd;
a streaming primary and its replicas are adopted as they run."""

from __future__ import annotations

import json
import shlex
from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Inbound
from fabstack.engine.settingspec import TCP_PORT, Setting, positive
from fabstack.stack.clustertls import cluster_ca_pem, declare_tls
from fabstack.stack.hostfiles import PATRONI_ADOPTED, PATRONI_CA, PATRONI_CONFIG, PATRONI_TLS

# The postgresql role's cluster, settings and computed tuning are what Patroni runs.
NEEDS = ("postgresql",)
READS = ("firewall", "etcd")

GENERATED_SECRETS = ("patroni_rest_password",)

PORTS = ("patroni_rest_port",)

# What the role wants of the cluster's settings in etcd, and the check that etcd holds it (every wanted key with
# its value; keys set by others are left alone).
DCS_WANTED = "/etc/patroni/fabstack-dcs.json"
DCS_MATCHES = """
import json, ssl, sys, urllib.request
def held(want, have):
    if isinstance(want, dict):
        return isinstance(have, dict) and all(held(v, have.get(k)) for k, v in want.items())
    return want == have
want = json.load(open(sys.argv[1]))
trusted = ssl.create_default_context(cafile=sys.argv[3])
have = json.load(urllib.request.urlopen(sys.argv[2], timeout=5, context=trusted))
sys.exit(0 if held(want, have) else 1)
"""


APPLY_DCS = (f"for i in $(seq 60); do patronictl -c {PATRONI_CONFIG} edit-config --force --quiet --apply {DCS_WANTED} "
             f">/dev/null 2>&1 && exit 0; sleep 1; done; "
             f"patronictl -c {PATRONI_CONFIG} edit-config --force --quiet --apply {DCS_WANTED}")


HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    # Patroni reads its file again on SIGHUP (and applies what changed to PostgreSQL); one between two tries
    # (a replica waiting for the leader to register the cluster) reads it when it starts again
    "reload patroni": "systemctl try-reload-or-restart patroni",
    # the env's cluster settings changed: put them in etcd (a leader may still be registering the cluster on a
    # first deploy, hence the bounded retries)
    "apply cluster settings": APPLY_DCS,
}

SETTINGS = {
    "patroni_scope": Setting(pattern=r"[A-Za-z0-9_-]{1,64}", shape="letters, digits, - and _"),
    "patroni_rest_port": TCP_PORT,
    "patroni_ttl": Setting(least=5, most=3600), "patroni_loop_wait": positive(600),
    "patroni_retry_timeout": positive(600), "patroni_maximum_lag_on_failover": Setting(least=0),
}

def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The lease must outlast a loop and two etcd retries."""
    needed = values["patroni_loop_wait"] + 2 * values["patroni_retry_timeout"]
    if values["patroni_ttl"] < needed:
        return [("patroni_ttl", f"must be at least patroni_loop_wait + 2 x patroni_retry_timeout ({needed}), "
                                f"got {values['patroni_ttl']}")]
    return []


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """The REST API: the other db hosts, the routers and the monitoring hosts."""
    return [Inbound((values["patroni_rest_port"],), "Patroni REST: its peers, the routers' checks, monitoring",
                    (values["firewall_db_group"], *values["patroni_rest_client_groups"]))]


def cluster_parameters(ctx: RoleContext) -> dict[str, Any]:
    """The parameters Patroni keeps alike on every member, as the postgresql role computed them."""
    v, computed = ctx.vars, ctx.computed
    return {
        "max_connections": computed["postgresql_max_connections"],
        "max_worker_processes": computed["postgresql_tuning"]["max_worker_processes"],
        "max_wal_senders": v["postgresql_max_wal_senders"],
        "max_replication_slots": v["postgresql_max_wal_senders"],
        "wal_level": "replica", "hot_standby": "on", "wal_log_hints": "on",
    }


def dcs_settings(ctx: RoleContext) -> dict[str, Any]:
    """The cluster-wide settings: the lease's timing, the failover lag bound, synchronous mode, and the
    parameters every member runs alike."""
    v = ctx.vars
    return {"ttl": v["patroni_ttl"], "loop_wait": v["patroni_loop_wait"], "retry_timeout": v["patroni_retry_timeout"],
            "maximum_lag_on_failover": v["patroni_maximum_lag_on_failover"],
            "synchronous_mode": v["postgresql_synchronous"],
            "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": cluster_parameters(ctx)}}


def deploy(ctx: RoleContext) -> None:
    """Declare Patroni's settings and service, and hand the server over from Debian's unit to it once."""
    v = ctx.vars
    etcd = [f"{ctx.address_of(name)}:{ctx.hostvars[name]['etcd_client_port']}"
            for name in ctx.groups.get(v["patroni_etcd_group"], [])]
    ctx.packages("patroni")
    # root's, readable by Patroni (postgres): the service account cannot swap what root's patronictl reads
    ctx.directory("/etc/patroni", owner="root", group="postgres", mode="0750")
    # Patroni (postgres) reads its certificate and key there; a reload makes it read changed ones
    declare_tls(ctx, PATRONI_TLS, "postgres", cluster_ca_pem(ctx, v["patroni_etcd_group"]), notify="reload patroni")
    ctx.template("config.yml.j2", PATRONI_CONFIG, owner="root", group="postgres", mode="0640", secret=True,
                 notify="reload patroni", name=ctx.host, address=ctx.facts["primary_address"], etcd_hosts=etcd,
                 dcs=dcs_settings(ctx), tls=PATRONI_TLS)
    ctx.directory("/etc/systemd/system/patroni.service.d")
    ctx.template("service.conf.j2", "/etc/systemd/system/patroni.service.d/60-fabstack.conf",
                 notify="reload systemd")
    # The running server is left running: Patroni adopts it (a replica's Patroni waits for the leader's to
    # register the cluster first). Debian's unit no longer starts it at boot; Patroni does.
    service, etc = v["postgresql_service"], v["postgresql_etc"]
    # start.conf sits in postgres's folder: written as postgres, so root never follows a link placed there
    ctx.command(f"systemctl disable {service} && runuser -u postgres -- sh -c 'echo manual > {etc}/start.conf' && "
                f"mkdir -p {PATRONI_ADOPTED.rsplit('/', 1)[0]} && touch {PATRONI_ADOPTED}",
                creates=PATRONI_ADOPTED, name="hand the server over to Patroni")
    ctx.service("patroni")
    # The cluster-wide settings live in etcd: written by the first leader from bootstrap.dcs, then kept in line
    # with these settings here (a change, or a hand edit since, is applied through patronictl).
    # A changed file applies them (its handler); the check below finds them changed in etcd by hand since.
    desired = dcs_settings(ctx)
    ctx.file(DCS_WANTED, json.dumps(desired, indent=2, sort_keys=True) + "\n", group="postgres", mode="0640",
             notify="apply cluster settings")
    rest = f"https://{ctx.facts['primary_address']}:{v['patroni_rest_port']}/config"
    ctx.command(APPLY_DCS, unless=f"python3 -c {shlex.quote(DCS_MATCHES)} {DCS_WANTED} {rest} {PATRONI_CA}",
                name="cluster settings in etcd")
