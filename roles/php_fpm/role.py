"""php_fpm: a pool sized from memory (the budget computes max_children), OPcache, validated with php-fpm -t."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment, out_of_bounds
from fabstack.stack.tuning import fpm_max_children, fpm_spare_servers

# Roles that must run on the same host: this role reads their settings.
NEEDS = ("php",)

HANDLERS = {
    "reload php-fpm": "systemctl reload {{ php_fpm_service }}",
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Values that are well-typed but cannot work."""
    problems = []
    if values["php_fpm_pm"] not in ("dynamic", "static", "ondemand"):
        problems.append(("php_fpm_pm", f"must be dynamic, static or ondemand, got {values['php_fpm_pm']!r}"))
    for key in ("php_fpm_worker_mb", "php_fpm_max_requests", "php_opcache_memory_mb",
                "php_opcache_max_accelerated_files", "php_fpm_listen_backlog"):
        if values[key] <= 0:
            problems.append((key, f"must be a positive number, got {values[key]}"))
    if not 0 < values["php_fpm_memory_share"] <= 1:
        problems.append(("php_fpm_memory_share", "must be a fraction between 0 and 1"))
    problems += out_of_bounds(values, {"php_fpm_max_children": (0, 100_000), "php_fpm_worker_mb": (1, 65_536)})
    if values["php_fpm_max_children"] < 0:
        problems.append(("php_fpm_max_children", "cannot be negative (0 computes it)"))
    return problems


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
