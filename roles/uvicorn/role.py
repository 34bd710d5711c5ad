"""uvicorn: every ASGI app this host serves (``apps:`` with runtime asgi) under systemd, each its own unit
``fabstack-NAME`` (gunicorn + uvicorn workers) on a loopback port of its own, workers from cores, keep-alive longer
than nginx's idle timeout."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, pooled_processes
from fabstack.engine.settingspec import TCP_PORT, positive
from fabstack.stack.apps import served_here
from fabstack.stack.runtimes import RUNTIMES, unit_shell_command
from fabstack.stack.tuning import app_keepalive_seconds, capped_nofile, one_per_core

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("fastapi_app",)

ASGI = RUNTIMES["asgi"]
# Settings holding TCP ports this role listens on: the engine refuses two roles sharing one on a host.
PORTS = ("uvicorn_port",)
# The line every unit of this role carries (systemd ignores X- keys): handlers and the clean-up find them by it.
MARK = "X-Fabstack-Runtime=asgi"
_MARKED = f"grep -lx {MARK} /etc/systemd/system/fabstack-*.service 2>/dev/null"

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart apps": f"for f in $({_MARKED}); do systemctl restart \"$(basename \"$f\")\"; done",
}


SETTINGS = {"uvicorn_port": TCP_PORT, "uvicorn_limit_concurrency": positive(), "uvicorn_backlog": positive(),
            "uvicorn_worker_mb": positive(65_536)}


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """Workers per app from cores, each with a pool on both database entries (rw and ro)."""
    apps = served_here(values, ASGI.name)
    if facts is None or not apps:
        return None
    workers = sum(one_per_core(facts["cpus"], app.processes or values["uvicorn_workers"]) for app in apps)
    return pooled_processes("uvicorn", "uvicorn_workers", workers, values["fastapi_db_pool_size"],
                            values["uvicorn_worker_mb"])


def deploy(ctx: RoleContext) -> None:
    """Declare each ASGI app's systemd unit and service, and stop the units of apps this host no longer serves."""
    v = ctx.vars
    ctx.packages(*ASGI.packages)
    units = []
    for index, app in enumerate(served_here(v, ASGI.name)):
        workers = one_per_core(ctx.facts["cpus"], app.processes or v["uvicorn_workers"])
        [port] = ASGI.ports(app, v, index, ctx.facts["cpus"])
        unit = ASGI.unit(app)
        units.append(f"{unit}.service")
        ctx.template(
            "asgi-app.service.j2", f"/etc/systemd/system/{unit}.service", notify=["reload systemd", "restart apps"],
            app=app, port=port, workers=workers, mark=MARK,
            command=unit_shell_command(app.command) if app.command else "",
            keepalive=app_keepalive_seconds(v["uvicorn_upstream_idle_seconds"]),
            nofile=capped_nofile(2 * v["uvicorn_limit_concurrency"] + 1024, ctx.facts["nofile_hard"]),
        )
        ctx.service(unit)
    # the units of apps gone from this host (removed from apps:, or their group) are stopped and removed
    gone = f"{_MARKED} | xargs -rn1 basename | grep -vxF {' '.join(f'-e {u}' for u in units) or '-e none'}"
    ctx.command(f"for u in $({gone}); do systemctl disable --now \"$u\"; rm -f \"/etc/systemd/system/$u\"; done; "
                "systemctl daemon-reload", unless=f"! {gone} >/dev/null", name="remove units of ASGI apps gone")
