"""The PostgreSQL tier's part of the env's budget: PgBouncer in front, PostgreSQL's connections and memory."""

from __future__ import annotations

from typing import Any

from fabstack.stack import tuning
from fabstack.stack.budget import Bar, Budget, Problem, roles_of


def size(
    project: Any, setups: dict[str, Any], hostfacts: dict[str, dict[str, Any]], budget: Budget, clients: int
) -> None:
    """PgBouncer's pools and open files from the app clients, and each PostgreSQL host's max_connections from
    every PgBouncer's pools, then its memory settings from PGTune's formulas."""
    lines = budget.lines
    server_conns: dict[str, int] = {}
    lines.append("PGBOUNCER")
    groups = project.groups()
    for host, setup in setups.items():
        if "pgbouncer" not in roles_of(setup):
            continue
        v = setup.vars
        max_client = v["pgbouncer_max_client_conn"]
        pool, reserve = v["pgbouncer_default_pool_size"], v["pgbouncer_reserve_pool_size"]
        primary = (groups.get(v["pgbouncer_primary_group"]) or [""])[0]
        replica = (groups.get(v["pgbouncer_replica_group"]) or [primary])[0]
        users = max(1, len(v["pgbouncer_users"]))
        # Every db host is sized to carry both entries: after a failover the rw entry, and while no replica is
        # left the ro entry too, may land on any of them, and a standby's max_connections must never be below
        # its primary's. So the numbers stay the same across failovers and no restart is ever needed for them.
        server_conns["any"] = server_conns.get("any", 0) + (pool + reserve) * users * 2
        hard = hostfacts[host]["nofile_hard"] if host in hostfacts else 1 << 20
        files = tuning.capped_nofile(max_client + 2 * (pool + reserve) * users + 256, hard)
        budget.of(host).update(pgbouncer_nofile=files, pgbouncer_primary=primary, pgbouncer_replica=replica)
        budget.commit(host, "pgbouncer", 20 + max_client // 256)
        lines.append(f"  {host:<8} max_client_conn {max_client} (app clients {clients}); pool {pool}+{reserve} "
                     f"reserve per user: rw -> {primary}, ro -> {replica}; open files {files}")
        budget.summarize(host, f"pgbouncer pool {pool}+{reserve} per user: rw -> {primary}, ro -> {replica}")
        budget.bars.append(Bar("PgBouncer clients", host, clients, max_client))
        origin = setup.resolved.origin("pgbouncer_max_client_conn")
        if clients > max_client:
            budget.problems.append(Problem(
                f"{clients} app clients exceed pgbouncer_max_client_conn {max_client}",
                key="pgbouncer_max_client_conn", host=host, where=origin))
        if files < max_client:
            budget.problems.append(Problem(
                f"max_client_conn {max_client} needs more open files than this host allows ({files})",
                key="pgbouncer_max_client_conn", host=host, where=origin))

    lines.append("POSTGRESQL")
    for host, setup in setups.items():
        if "postgresql" not in roles_of(setup):
            continue
        v = setup.vars
        reserved = v["postgresql_superuser_reserved_connections"]
        needed = max(server_conns.values(), default=0) + reserved + v["postgresql_admin_connections"]
        configured = v["postgresql_max_connections"]
        max_conn = configured if configured > 0 else max(needed, 20)
        budget.of(host).update(postgresql_max_connections=max_conn)
        if host not in hostfacts:
            continue
        facts = hostfacts[host]
        ssd = not any(d.get("rotational") for d in facts.get("disks", [])) or v["postgresql_assume_ssd"]
        settings = tuning.pgtune_web(facts["memory_mb"], facts["cpus"], ssd, max_conn)
        budget.of(host).update(postgresql_max_connections=max_conn, postgresql_tuning=settings)
        shared = tuning.parse_size_mb(str(settings["shared_buffers"]))
        work = tuning.parse_size_mb(str(settings["work_mem"]))
        budget.commit(host, "postgresql shared_buffers", shared)
        budget.commit(host, "postgresql backends", max_conn * (work + 5))
        pools = server_conns.get("any", 0)
        how = "computed" if configured <= 0 else "configured"
        lines.append(f"  {host:<8} max_connections {max_conn} ({how}; needs pgbouncer pools {pools} + reserved "
                     f"{reserved} + admin {v['postgresql_admin_connections']}); shared_buffers "
                     f"{settings['shared_buffers']}, work_mem {settings['work_mem']}")
        budget.summarize(host, f"postgresql max_connections {max_conn}, shared_buffers {settings['shared_buffers']}")
        budget.bars.append(Bar("PostgreSQL connections", host, pools + reserved + v["postgresql_admin_connections"],
                               max_conn))
        if pools > max_conn - reserved:
            budget.problems.append(Problem(
                f"PgBouncer pools need {pools} server connections but max_connections {max_conn} leaves "
                f"{max_conn - reserved} after {reserved} reserved",
                key="postgresql_max_connections", host=host, where=setup.resolved.origin("postgresql_max_connections")))
