"""php_app: what the demo Laravel shop needs on a host: Debian's Laravel framework, and its .env (DSNs to
PgBouncer, Redis credentials) in the shared folder. The shop itself is released from git (``apps:``)."""

from __future__ import annotations

from fabstack.role import RoleContext
from fabstack.runtimes import RUNTIMES

GENERATED_SECRETS = ("postgresql_app_password", "redis_app_password")

# A new .env is read after Laravel's config cache is rebuilt: the next release does that (config:cache), and a
# reload of PHP-FPM makes running workers let go of the old cache.
HANDLERS = {
    "reload php-fpm": "if systemctl is-active -q {{ php_fpm_service }}; then systemctl reload {{ php_fpm_service }}; "
                      "fi",
    "restart workers": "if systemctl is-active -q supervisor; then supervisorctl restart all >/dev/null; fi",
}


def deploy(ctx: RoleContext) -> None:
    """Declare Debian's Laravel framework and the shop's shared .env."""
    v = ctx.vars
    ctx.packages(*RUNTIMES["laravel"].packages)
    for folder in (v["php_app_dest"], f"{v['php_app_dest']}/shared"):
        ctx.directory(folder)
    ctx.template("env.j2", f"{v['php_app_dest']}/shared/.env", group="www-data", mode="0640", secret=True,
                 pgbouncer=ctx.peer(v["php_app_pgbouncer_group"]), redis=ctx.peer(v["php_app_redis_group"]),
                 notify=["reload php-fpm", "restart workers"])
