"""uvicorn: the FastAPI app under systemd (gunicorn + uvicorn workers), workers from cores, keep-alive longer
than nginx's idle timeout."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, pooled_processes
from fabstack.stack.tuning import app_keepalive_seconds, capped_nofile, one_per_core

# Settings holding TCP ports this role listens on: the engine refuses two roles sharing one on a host.
PORTS = ("uvicorn_port",)

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "restart app": "systemctl restart fabstack-fastapi",
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Sizes must be positive."""
    return [(key, f"must be a positive number, got {values[key]}")
            for key in ("uvicorn_port", "uvicorn_limit_concurrency", "uvicorn_backlog", "uvicorn_worker_mb")
            if values[key] <= 0]


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """Workers from cores, each with a pool on both database entries (rw and ro)."""
    if facts is None:
        return None
    return pooled_processes("uvicorn", "uvicorn_workers", one_per_core(facts["cpus"], values["uvicorn_workers"]),
                            values["fastapi_db_pool_size"], values["uvicorn_worker_mb"])


def deploy(ctx: RoleContext) -> None:
    """Declare the app's systemd unit and service."""
    v = ctx.vars
    ctx.packages("gunicorn")
    ctx.template(
        "fabstack-fastapi.service.j2", "/etc/systemd/system/fabstack-fastapi.service",
        notify=["reload systemd", "restart app"], workers=ctx.computed["uvicorn_workers"],
        keepalive=app_keepalive_seconds(v["uvicorn_upstream_idle_seconds"]),
        nofile=capped_nofile(2 * v["uvicorn_limit_concurrency"] + 1024, ctx.facts["nofile_hard"]),
        app_dir=f"{v['fastapi_app_dest']}/current",
    )
    ctx.service("fabstack-fastapi")
