"""fastapi_app: what the demo FastAPI app needs on a host: Debian's packages, its settings file (PgBouncer DSNs,
Redis credentials). The app itself is released from git (``apps:``, fabstack.day2.release)."""

from __future__ import annotations

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import positive
from fabstack.stack.runtimes import RUNTIMES

GENERATED_SECRETS = ("postgresql_app_password", "redis_app_password")
# The libraries the demo app imports, Debian's (its worker runs Celery).
PACKAGES = ("python3-fastapi", "python3-uvicorn", "python3-psycopg", "python3-psycopg-pool", "python3-redis",
            "python3-celery")

HANDLERS = {
    # gunicorn replaces its workers gracefully on reload: a release drops no request
    "reload app": "if systemctl is-active -q fabstack-fastapi; then systemctl reload fabstack-fastapi; fi",
    "restart workers": "if systemctl is-active -q supervisor; then supervisorctl restart all >/dev/null; fi",
}


SETTINGS = {"fastapi_db_pool_size": positive(10_000)}


def deploy(ctx: RoleContext) -> None:
    """Declare the Python packages the app needs (Debian's), its settings and its release."""
    v = ctx.vars
    ctx.packages(*PACKAGES, *RUNTIMES["asgi"].packages)
    ctx.directory("/etc/fabstack")
    ctx.template("fastapi-app.env.j2", "/etc/fabstack/fastapi-app.env", group="www-data", mode="0640",
                  secret=True, pgbouncer=ctx.peer(v["fastapi_app_pgbouncer_group"]),
                  redis=ctx.peer(v["fastapi_app_redis_group"]), notify=["reload app", "restart workers"])
