"""postgresql_replica: clone the primary once with pg_basebackup -R through this replica's slot; hot standby."""

from __future__ import annotations

import shlex

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import positive
from fabstack.stack.hostfiles import PATRONI_ADOPTED

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("postgresql",)

HANDLERS: dict[str, str] = {}


SETTINGS = {"postgresql_replica_clone_wait": positive(86_400)}  # seconds


def primary_of(ctx: RoleContext) -> str:
    """The primary's address (the first host of the primary group)."""
    primaries = ctx.groups.get(ctx.vars["postgresql_primary_group"], [])
    if not primaries:
        return ""
    return str(ctx.hostvars[primaries[0]].get("ansible_host", primaries[0]))


def deploy(ctx: RoleContext) -> None:
    """Declare the one-time clone of the primary (the postgresql role wrote the replication password file)."""
    v = ctx.vars
    data, service, slot = v["postgresql_data"], v["postgresql_service"], v["postgresql_slot"]
    primary = primary_of(ctx)
    user = v["postgresql_replication_user"]
    conninfo = f"host={primary} port={v['postgresql_port']} user={user} application_name={slot}"
    clone = (
        f"runuser -u postgres -- pg_basebackup -D {data}.clone -R -X stream -c fast -S {slot} "
        f"-d {shlex.quote(conninfo)}"
    )
    wait = v["postgresql_replica_clone_wait"]
    script = (
        "set -e; "
        f"rm -rf {data}.clone; "
        f"for i in $(seq {wait // 2}); do if {clone} 2>/tmp/fabstack-clone.err; then ok=1; break; fi; "
        f"rm -rf {data}.clone; sleep 2; done; "
        "if [ -z \"$ok\" ]; then cat /tmp/fabstack-clone.err >&2; exit 1; fi; "
        f"systemctl stop {service}; "
        f"rm -rf {data}.old; mv {data} {data}.old; mv {data}.clone {data}; "
        f"systemctl start {service}; rm -rf {data}.old"
    )
    # A clone is known by the primary it follows (pg_basebackup -R writes primary_conninfo), not by standby.signal:
    # the fence may have put that in a fresh host's own cluster when it first started beside a running primary.
    # A host Patroni runs is never cloned here: after a failover it may be the leader.
    ctx.command(script, name=f"clone {primary} into {data}",
                unless=f"grep -qs '^primary_conninfo' {data}/postgresql.auto.conf || test -e {PATRONI_ADOPTED}")
