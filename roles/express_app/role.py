"""express_app: what the demo Express API needs on a host: Debian's nodejs and its settings file (PgBouncer entries,
Redis credentials, the shared rate limit). The app itself is released from git (``apps:``, fabstack.day2.release)."""

from __future__ import annotations

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import positive
from fabstack.stack.runtimes import RUNTIMES

GENERATED_SECRETS = ("postgresql_app_password", "redis_app_password")

# New settings reach the instances and the BullMQ worker when they restart.
HANDLERS = {
    "restart instances": "systemctl restart 'fabstack-express@*.service' 2>/dev/null || true",
    "restart workers": "if systemctl is-active -q supervisor; then supervisorctl restart all >/dev/null; fi",
}


SETTINGS = {"express_app_rate_limit": positive(1_000_000)}  # requests per second must get through


def deploy(ctx: RoleContext) -> None:
    """Declare nodejs and the app's settings file."""
    v = ctx.vars
    ctx.packages(*RUNTIMES["node"].packages)
    ctx.directory("/etc/fabstack")
    ctx.template("express.env.j2", "/etc/fabstack/express.env", group="www-data", mode="0640", secret=True,
                 pgbouncer=ctx.peer(v["express_app_pgbouncer_group"]), redis=ctx.peer(v["express_app_redis_group"]),
                 notify=["restart instances", "restart workers"])
