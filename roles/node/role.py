"""node: each Node.js app this host serves as systemd instances (one per core by default, each on its own
loopback port, started at boot, restarted on failure, unprivileged), logs in a size-bounded journal."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, out_of_bounds, pooled_processes
from fabstack.stack.apps import served_here
from fabstack.stack.runtimes.node import instance_ports
from fabstack.stack.tuning import one_per_core

# The file each instance runs, in the release (package.json's "main" is the convention Express apps follow).
ENTRY = "server.js"

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart journald": "systemctl restart systemd-journald",
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Sizes must be positive and sane."""
    return out_of_bounds(values, {"node_instances": (0, 256), "node_first_port": (1024, 65000),
                                  "node_instance_mb": (16, 65536), "node_db_pool_size": (1, 1000),
                                  "node_journal_max_mb": (16, 1_000_000)})


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """Instances per app from cores, each with a pool on both database entries (rw and ro)."""
    apps = served_here(values, "node")
    if facts is None or not apps:
        return None
    return pooled_processes("node", "node_instances", one_per_core(facts["cpus"], values["node_instances"]) * len(apps),
                            values["node_db_pool_size"], values["node_instance_mb"])


def deploy(ctx: RoleContext) -> None:
    """Declare nodejs, the journal's bound, and each app's unit and instances."""
    ctx.packages("nodejs")
    ctx.directory("/etc/systemd/journald.conf.d")
    ctx.template("journald.conf.j2", "/etc/systemd/journald.conf.d/60-fabstack.conf", notify="restart journald")
    for index, app in enumerate(served_here(ctx.vars, "node")):
        ctx.template("node-app@.service.j2", f"/etc/systemd/system/fabstack-{app.name}@.service", app=app,
                     entry=ENTRY, notify="reload systemd")
        ports = instance_ports(ctx.vars, index, ctx.facts["cpus"])
        for port in ports:
            ctx.service(f"fabstack-{app.name}@{port}")
        # instances of an earlier, larger count (a smaller box, or node_instances lowered) are stopped
        extra = (f"systemctl list-units --plain --no-legend --state=active,activating,reloading "
                 f"'fabstack-{app.name}@*.service' | awk '{{print $1}}' "
                 f"| grep -vxE 'fabstack-{app.name}@({'|'.join(map(str, ports))})\\.service'")
        ctx.command(f"for u in $({extra}); do systemctl disable --now \"$u\"; done", unless=f"! {extra} >/dev/null",
                    name=f"stop extra {app.name} instances")
