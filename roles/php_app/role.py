"""php_app: what the demo Laravel shop needs on a host: Debian's Laravel framework, and its .env (the database:
PgBouncer's entries, or MariaDB's primary and replicas; Redis credentials) in the shared folder. The shop itself
is released from git (``apps:``)."""

from __future__ import annotations

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import Setting
from fabstack.stack.runtimes import RUNTIMES

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("php",)

GENERATED_SECRETS = ("postgresql_app_password", "mariadb_app_password", "redis_app_password")

# A new .env is read after Laravel's config cache is rebuilt: the next release does that (config:cache), and a
# reload of PHP-FPM makes running workers let go of the old cache.
HANDLERS = {
    # the running release reads the new .env once its config cache is made again (a failover repoints the
    # database this way, without a release)
    "rebuild config cache": "if [ -d {{ php_app_dest }}/current ]; then cd {{ php_app_dest }}/current && "
                            "runuser -u www-data -- php artisan config:cache --no-interaction >/dev/null; fi",
    "reload php-fpm": "if systemctl is-active -q {{ php_fpm_service }}; then systemctl reload {{ php_fpm_service }}; "
                      "fi",
    "restart workers": "if systemctl is-active -q supervisor; then supervisorctl restart all >/dev/null; fi",
}


SETTINGS = {"php_app_database": Setting(choices=("", "postgresql", "mariadb"))}  # a tier the shop speaks


def database(ctx: RoleContext) -> str:
    """The tier the shop uses: the one set, else PostgreSQL where the env has PgBouncer, else MariaDB."""
    v = ctx.vars
    if v["php_app_database"]:
        return str(v["php_app_database"])
    return "postgresql" if ctx.groups.get(v["php_app_pgbouncer_group"]) else "mariadb"


def deploy(ctx: RoleContext) -> None:
    """Declare Debian's Laravel framework and the shop's shared .env."""
    v = ctx.vars
    ctx.packages(*RUNTIMES["laravel"].packages)
    for folder in (v["php_app_dest"], f"{v['php_app_dest']}/shared"):
        ctx.directory(folder)
    tier = database(ctx)
    primary = ctx.peer(v["php_app_mariadb_primary_group"])
    replicas = [ctx.address_of(h) for h in ctx.groups.get(v["php_app_mariadb_replica_group"], [])]
    write_host = primary.get("address", "")
    ctx.template("env.j2", f"{v['php_app_dest']}/shared/.env", group="www-data", mode="0640", secret=True,
                 database=tier, pgbouncer=ctx.peer(v["php_app_pgbouncer_group"]),
                 redis=ctx.peer(v["php_app_redis_group"]), mariadb=primary, write_host=write_host,
                 read_hosts=replicas or [write_host],
                 notify=["rebuild config cache", "reload php-fpm", "restart workers"])
