"""node: each Node.js app this host serves as systemd instances (one per core by default, each on its own
loopback port, started at boot, restarted on failure, unprivileged), logs in a size-bounded journal."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, pooled_processes
from fabstack.engine.settingspec import Setting, positive
from fabstack.stack.apps import served_here
from fabstack.stack.runtimes import RUNTIMES, unit_shell_command
from fabstack.stack.runtimes.node import ENTRY_VARIABLE, START_FILE

NODE = RUNTIMES["node"]
# The line every unit of this role carries (systemd ignores X- keys): the clean-up finds them by it.
MARK = "X-Fabstack-Runtime=node"

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart journald": "systemctl restart systemd-journald",
}


SETTINGS = {
    "node_instances": Setting(least=0, most=256), "node_first_port": Setting(least=1024, most=65000),
    "node_instance_mb": Setting(least=16, most=65536), "node_db_pool_size": positive(1000),
    "node_journal_max_mb": Setting(least=16, most=1_000_000),
}


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """Instances per app from cores, each with a pool on both database entries (rw and ro)."""
    apps = served_here(values, NODE.name)
    if facts is None or not apps:
        return None
    instances = sum(len(NODE.ports(app, values, index, facts["cpus"])) for index, app in enumerate(apps))
    return pooled_processes("node", "node_instances", instances, values["node_db_pool_size"],
                            values["node_instance_mb"])


def deploy(ctx: RoleContext) -> None:
    """Declare nodejs, the journal's bound, and each app's unit and instances."""
    ctx.packages(*NODE.packages)
    ctx.directory("/etc/systemd/journald.conf.d")
    ctx.template("journald.conf.j2", "/etc/systemd/journald.conf.d/60-fabstack.conf", notify="restart journald")
    apps = served_here(ctx.vars, NODE.name)
    for index, app in enumerate(apps):
        unit = NODE.unit(app)
        ctx.template("node-app@.service.j2", f"/etc/systemd/system/{unit}.service", app=app,
                     start_file=START_FILE, entry_variable=ENTRY_VARIABLE, mark=MARK,
                     command=unit_shell_command(app.command) if app.command else "", notify="reload systemd")
        ports = NODE.ports(app, ctx.vars, index, ctx.facts["cpus"])
        for port in ports:
            ctx.service(f"{unit}{port}")
        # instances of an earlier, larger count (a smaller box, or node_instances lowered) are stopped
        extra = (f"systemctl list-units --plain --no-legend --state=active,activating,reloading "
                 f"'fabstack-{app.name}@*.service' | awk '{{print $1}}' "
                 f"| grep -vxE 'fabstack-{app.name}@({'|'.join(map(str, ports))})\\.service'")
        ctx.command(f"for u in $({extra}); do systemctl disable --now \"$u\"; done", unless=f"! {extra} >/dev/null",
                    name=f"stop extra {app.name} instances")
    # the units of Node.js apps gone from this host (removed from apps:, or their group) are stopped and removed
    ours = f"grep -lx {MARK} /etc/systemd/system/fabstack-*@.service 2>/dev/null | xargs -rn1 basename"
    keep = " ".join(f"-e {NODE.unit(app)}.service" for app in apps) or "-e none"
    gone = f"{ours} | grep -vxF {keep}"
    instances = "systemctl list-units --all --plain --no-legend \"${u%.service}*.service\" | awk '{print $1}'"
    ctx.command(f"for u in $({gone}); do for i in $({instances}); do systemctl disable --now \"$i\"; done; "
                f"rm -f \"/etc/systemd/system/$u\" /etc/systemd/system/*.wants/\"${{u%.service}}\"*.service; done; "
                "systemctl daemon-reload", unless=f"! {gone} >/dev/null", name="remove units of Node.js apps gone")
