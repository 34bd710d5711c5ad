"""The connection and memory budget of a whole env, computed before any host is changed.

Every tier's numbers come from here, so the roles that write them into configs and ``inv capacity`` that prints
them can never disagree. A plan whose numbers cannot work (pools above max_connections, clients above
max_client_conn, more memory committed than a host has) is refused with the numbers named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fabstack import tuning


@dataclass
class Problem:
    """One reason the budget does not fit."""

    message: str
    key: str = ""
    host: str = ""
    where: str = ""


@dataclass(frozen=True)
class Bar:
    """One use of a limited resource on one host, against its limit (for the capacity report's bars)."""

    tier: str
    host: str
    used: int
    limit: int
    unit: str = ""


@dataclass
class Budget:
    """Per-host computed values, the tier summary lines, each host's own summaries, the bars, and any problems."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    memory: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    summaries: dict[str, list[str]] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)

    def of(self, host: str) -> dict[str, Any]:
        """The computed values for one host (an empty mapping if none)."""
        return self.values.setdefault(host, {})

    def summarize(self, host: str, text: str) -> None:
        """Record one line of what a host carries (a pool's size, a limit), for the topology picture."""
        self.summaries.setdefault(host, []).append(" ".join(text.split()))

    def commit(self, host: str, what: str, mb: int, key: str = "") -> None:
        """Record memory a component commits on a host, and the setting that sizes it."""
        self.memory.setdefault(host, []).append((what, mb, key))


def _roles(setup: Any) -> set[str]:
    return {r.name for r in setup.roles}


def compute_budget(project: Any, setups: dict[str, Any], hostfacts: dict[str, dict[str, Any]]) -> Budget:
    """Compute every tier's numbers for the whole env and check that they fit together.

    Each role says what it commits on a host (its ``commitment``: computed values, memory, database clients);
    the database tier (PgBouncer pools, PostgreSQL's max_connections) is sized from the clients they add up to.
    ``setups`` should hold every host of the inventory, even under ``--limit``: PostgreSQL's max_connections
    depends on every PgBouncer's pools. Numbers that need a host's facts (PHP-FPM children, tuning, memory)
    are computed for the hosts in ``hostfacts`` only.
    """
    budget = Budget()
    clients = 0
    lines = budget.lines
    lines.append("HOSTS (what each role commits; database clients go through PgBouncer)")
    for host, setup in setups.items():
        for role in setup.roles:
            taken = role.commitment(setup.vars, hostfacts.get(host))
            if taken is None:
                continue
            budget.of(host).update(taken.computed)
            for what, mb in taken.memory:
                budget.commit(host, what, mb, taken.memory_key)
            if taken.summary:
                lines.append(f"  {host:<8} {taken.summary}")
                budget.summarize(host, taken.summary)
            clients += taken.db_clients
    lines.append(f"  total database clients: {clients}")

    _pgbouncer_and_postgresql(project, setups, hostfacts, budget, clients)
    _mariadb(setups, budget, clients)
    _memory(setups, hostfacts, budget)
    return budget


def _pgbouncer_and_postgresql(
    project: Any, setups: dict[str, Any], hostfacts: dict[str, dict[str, Any]], budget: Budget, clients: int
) -> None:
    lines = budget.lines
    server_conns: dict[str, int] = {}
    lines.append("PGBOUNCER")
    groups = project.groups()
    for host, setup in setups.items():
        if "pgbouncer" not in _roles(setup):
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
        if "postgresql" not in _roles(setup):
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


def _mariadb(setups: dict[str, Any], budget: Budget, clients: int) -> None:
    """MariaDB has no pooler in front (Debian has none for it): every app client may hold a connection to each
    host of the tier (writes on the primary, reads on a replica, and any host may become the primary), so each
    host's max_connections holds all of them plus the admins': computed so unless configured (then checked)."""
    hosts = [(h, s) for h, s in setups.items() if "mariadb" in _roles(s) and "mariadb_tuning" in budget.of(h)]
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


def _memory(setups: dict[str, Any], hostfacts: dict[str, dict[str, Any]], budget: Budget) -> None:
    budget.lines.append("MEMORY (committed / host memory)")
    for host, parts in budget.memory.items():
        if host not in hostfacts:
            continue
        total = sum(mb for _, mb, _ in parts)
        have = hostfacts[host]["memory_mb"]
        detail = ", ".join(f"{what} {mb}MB" for what, mb, _ in parts)
        budget.lines.append(f"  {host:<8} {total}MB / {have}MB: {detail}")
        budget.bars.append(Bar("Memory", host, total, have, "MB"))
        if total > have:
            # name the setting behind the largest share: the first one to change
            key = max(((mb, key) for _, mb, key in parts if key), default=(0, ""))[1]
            budget.problems.append(Problem(
                f"{total}MB committed ({detail}) exceeds the host's {have}MB", key=key or "memory", host=host,
                where=setups[host].resolved.origin(key) if key else ""))
