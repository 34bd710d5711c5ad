"""php_app: release the demo PHP app and write its configuration (DSNs to PgBouncer, Redis credentials)."""

from __future__ import annotations

from typing import Any

from fabstack.role import RoleContext

GENERATED_SECRETS = ("postgresql_app_password", "redis_app_password")

# A release resets OPcache (validate_timestamps is off) and restarts the queue workers on the new code.
HANDLERS = {
    "reload php-fpm": "if systemctl is-active -q {{ php_fpm_service }}; then systemctl reload {{ php_fpm_service }}; "
                      "fi",
    "restart workers": "if systemctl is-active -q supervisor; then supervisorctl restart all >/dev/null; fi",
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """At least the current release must be kept."""
    if values["php_app_keep_releases"] < 1:
        return [("php_app_keep_releases", "must be at least 1")]
    return []


def deploy(ctx: RoleContext) -> None:
    """Declare the PHP runtime pieces the app needs, its config and its release."""
    v = ctx.vars
    ctx.directory("/etc/fabstack")
    ctx.template("php-app.php.j2", "/etc/fabstack/php-app.php", group="www-data", mode="0640", secret=True,
                  pgbouncer=ctx.peer(v["php_app_pgbouncer_group"]), redis=ctx.peer(v["php_app_redis_group"]),
                  notify=["reload php-fpm", "restart workers"])
    ctx.release(v["php_app_source"], v["php_app_dest"], keep=v["php_app_keep_releases"],
                 notify=["reload php-fpm", "restart workers"])
