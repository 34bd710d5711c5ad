"""The MariaDB tier's part of the env's budget: every app client counted against each host's max_connections."""

from __future__ import annotations

from typing import Any

from fabstack.stack.budget import Bar, Budget, Problem, roles_of


def size(project: Any, setups: dict[str, Any], hostfacts: dict[str, dict[str, Any]], budget: Budget,
         clients: int) -> None:
    """MariaDB has no pooler in front (Debian has none for it): every app client may hold a connection to each
    host of the tier (writes on the primary, reads on a replica, and any host may become the primary), so each
    host's max_connections holds all of them plus the admins': computed so unless configured (then checked)."""
    hosts = [(h, s) for h, s in setups.items() if "mariadb" in roles_of(s) and "mariadb_tuning" in budget.of(h)]
    if not hosts:
        return
    budget.lines.append("MARIADB")
    for host, setup in hosts:
        v = setup.vars
        settings = dict(budget.of(host)["mariadb_tuning"])
        admin = v["mariadb_admin_connections"]
        if not v["mariadb_max_connections"] and clients + admin > settings["max_connections"]:
            budget.commit(host, "mariadb connections", (clients + admin - settings["max_connections"]) // 4,
                          "mariadb_app_connections")
            settings["max_connections"] = clients + admin
            budget.of(host)["mariadb_tuning"] = settings
        max_conn = settings["max_connections"]
        budget.lines.append(f"  {host:<8} max_connections {max_conn} (app clients {clients} + admin {admin})")
        budget.bars.append(Bar("MariaDB connections", host, clients + admin, max_conn))
        if clients + admin > max_conn:
            budget.problems.append(Problem(
                f"{clients} app clients + {admin} admin connections exceed MariaDB's max_connections {max_conn}",
                key="mariadb_max_connections", host=host, where=setup.resolved.origin("mariadb_max_connections")))
