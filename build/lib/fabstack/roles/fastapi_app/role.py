"""fastapi_app: release the demo FastAPI app and write its settings file (PgBouncer DSNs, Redis credentials)."""

from __future__ import annotations

from typing import Any

from fabstack.role import RoleContext

GENERATED_SECRETS = ("postgresql_app_password", "redis_app_password")

HANDLERS = {
    # gunicorn replaces its workers gracefully on reload: a release drops no request
    "reload app": "if systemctl is-active -q fabstack-fastapi; then systemctl reload fabstack-fastapi; fi",
    "restart workers": "if systemctl is-active -q supervisor; then supervisorctl restart all >/dev/null; fi",
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The pool must hold at least one connection, and at least the current release must be kept."""
    problems = []
    if values["fastapi_db_pool_size"] <= 0:
        problems.append(("fastapi_db_pool_size", "must be a positive number"))
    if values["fastapi_app_keep_releases"] < 1:
        problems.append(("fastapi_app_keep_releases", "must be at least 1"))
    return problems


def deploy(ctx: RoleContext) -> None:
    """Declare the Python packages the app needs (Debian's), its settings and its release."""
    v = ctx.vars
    ctx.packages("python3-fastapi", "python3-uvicorn", "python3-psycopg", "python3-psycopg-pool", "python3-redis")
    ctx.directory("/etc/fabstack")
    ctx.template("fastapi-app.env.j2", "/etc/fabstack/fastapi-app.env", group="www-data", mode="0640",
                  secret=True, pgbouncer=ctx.peer(v["fastapi_app_pgbouncer_group"]),
                  redis=ctx.peer(v["fastapi_app_redis_group"]), notify=["reload app", "restart workers"])
    ctx.release(v["fastapi_app_source"], v["fastapi_app_dest"], keep=v["fastapi_app_keep_releases"],
                 notify=["reload app", "restart workers"])
