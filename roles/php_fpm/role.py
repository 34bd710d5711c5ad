"""php_fpm: a pool sized from memory (the budget computes max_children), OPcache, validated with php-fpm -t."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment
from fabstack.engine.settingspec import Setting, positive
from fabstack.stack.tuning import fpm_max_children, fpm_spare_servers

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("php",)

HANDLERS = {
    "reload php-fpm": "systemctl reload {{ php_fpm_service }}",
}


SETTINGS = {
    "php_fpm_pm": Setting(choices=("dynamic", "static", "ondemand")),
    "php_fpm_worker_mb": positive(65_536), "php_fpm_max_requests": positive(), "php_opcache_memory_mb": positive(),
    "php_opcache_max_accelerated_files": positive(), "php_fpm_listen_backlog": positive(),
    "php_fpm_memory_share": Setting(above=0, most=1),
    "php_fpm_max_children": Setting(least=0, most=100_000),  # 0 computes it
}


def max_children(values: dict[str, Any], facts: dict[str, Any]) -> int:
    """pm.max_children: configured, or what fits in the host's memory share beside OPcache."""
    if values["php_fpm_max_children"] > 0:
        return values["php_fpm_max_children"]
    usable = int(facts["memory_mb"] * values["php_fpm_memory_share"]) - values["php_opcache_memory_mb"]
    return fpm_max_children(usable, 0, values["php_fpm_worker_mb"])


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """Children (each opening its database connections) and their memory beside OPcache."""
    per_child = values["php_fpm_db_connections_per_child"]
    if facts is None:  # a host outside this run: only configured children are known
        children = values["php_fpm_max_children"]
        return Commitment(db_clients=children * per_child) if children > 0 else None
    children = max_children(values, facts)
    return Commitment(
        computed={"php_fpm_max_children": children},
        memory=[("php-fpm children", children * values["php_fpm_worker_mb"]),
                ("opcache", values["php_opcache_memory_mb"])],
        db_clients=children * per_child, memory_key="php_fpm_max_children",
        summary=f"php-fpm   {children} children x {per_child} db connections = {children * per_child}")


def deploy(ctx: RoleContext) -> None:
    """Declare PHP-FPM, its global config, the app pool and OPcache settings."""
    children = ctx.computed["php_fpm_max_children"]
    start, min_spare, max_spare = fpm_spare_servers(children)
    v = ctx.vars
    fpm, validate = f"{v['php_etc']}/fpm", f"{v['php_fpm_binary']} -t"
    ctx.packages(v["php_fpm_service"])
    ctx.template("php-fpm.conf.j2", f"{fpm}/php-fpm.conf", validate=validate, notify="reload php-fpm")
    ctx.absent(f"{fpm}/pool.d/www.conf", notify="reload php-fpm")
    ctx.template("pool.conf.j2", f"{fpm}/pool.d/app.conf", validate=validate, notify="reload php-fpm",
                  max_children=children, start_servers=start, min_spare=min_spare, max_spare=max_spare)
    ctx.template("opcache.ini.j2", f"{fpm}/conf.d/90-fabstack.ini", validate=validate, notify="reload php-fpm")
    ctx.service(v["php_fpm_service"])
