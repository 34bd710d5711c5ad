"""Tuning values computed from a host's facts and its settings: pure functions, no I/O.

Every role takes its numbers from here so that the arithmetic is tested once, against golden cases.
"""

from __future__ import annotations


def capped_nofile(wanted: int, hard_limit: int) -> int:
    """The open-files limit to configure: what is wanted, but never above what the host can grant.

    Inside a container without CAP_SYS_RESOURCE a higher limit makes pam_limits refuse logins and
    services fail to start, so the host's hard limit (PID 1's) is the ceiling.
    """
    return max(1024, min(wanted, hard_limit))


def nginx_worker_processes(cpus: int, configured: int = 0) -> int:
    """One worker per core unless the inventory says otherwise (0 means "from cores")."""
    return configured if configured > 0 else max(1, cpus)


def nginx_worker_rlimit_nofile(worker_connections: int, hard_limit: int) -> int:
    """Open files per worker: two per connection (client + upstream) plus headroom, within the host's limit."""
    return capped_nofile(2 * worker_connections + 256, hard_limit)


def nginx_worker_connections(configured: int, rlimit_nofile: int) -> int:
    """Connections per worker, lowered if the file limit could not hold two descriptors for each."""
    return max(512, min(configured, (rlimit_nofile - 256) // 2))


# ------------------------------------------------------------------ sizes

KB_PER_MB = 1024
KB_PER_GB = 1024 * 1024


def pg_size(kb: int) -> str:
    """A size in kB written as PostgreSQL (and PGTune) writes it: GB or MB when exact, else kB."""
    if kb % KB_PER_GB == 0:
        return f"{kb // KB_PER_GB}GB"
    if kb % KB_PER_MB == 0:
        return f"{kb // KB_PER_MB}MB"
    return f"{kb}kB"


def parse_size_mb(text: str | int) -> int:
    """Megabytes from ``512m``, ``2g``, ``2GB``, ``1024`` (plain numbers are MB)."""
    if isinstance(text, int):
        return text
    raw = str(text).strip().lower().removesuffix("b")
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    if raw and raw[-1] in units:
        return int(float(raw[:-1]) * units[raw[-1]])
    return int(raw)


# ------------------------------------------------------------------ PostgreSQL (PGTune, "web" profile)


def pgtune_web(memory_mb: int, cpus: int, ssd: bool, max_connections: int) -> dict[str, str | int | float]:
    """PostgreSQL settings from PGTune's formulas for a web application (values as postgresql.conf takes them).

    shared_buffers = RAM/4; effective_cache_size = 3/4 RAM; maintenance_work_mem = RAM/16 (at most 2GB);
    wal_buffers = 3% of shared_buffers (16MB at most); work_mem = (RAM - shared_buffers) / (3 x connections) /
    parallel workers per gather; parallel workers from cores (per gather: half the cores, at most 4).
    """
    ram_kb = memory_mb * KB_PER_MB
    shared_kb = ram_kb // 4
    wal_kb = min(16 * KB_PER_MB, max(32, shared_kb * 3 // 100))
    if 14 * KB_PER_MB <= wal_kb < 16 * KB_PER_MB:
        wal_kb = 16 * KB_PER_MB
    per_gather = min(4, max(1, -(-cpus // 2)))
    work_kb = max(64, (ram_kb - shared_kb) // (max_connections * 3) // per_gather)
    return {
        "shared_buffers": pg_size(shared_kb),
        "effective_cache_size": pg_size(ram_kb * 3 // 4),
        "maintenance_work_mem": pg_size(min(2 * KB_PER_GB, ram_kb // 16)),
        "checkpoint_completion_target": 0.9,
        "wal_buffers": pg_size(wal_kb),
        "default_statistics_target": 100,
        "random_page_cost": 1.1 if ssd else 4,
        "effective_io_concurrency": 200 if ssd else 2,
        "work_mem": pg_size(work_kb),
        "huge_pages": "try" if memory_mb >= 8 * 1024 else "off",
        "min_wal_size": "1GB",
        "max_wal_size": "4GB",
        "max_worker_processes": max(8, cpus),
        "max_parallel_workers_per_gather": per_gather,
        "max_parallel_workers": cpus,
        "max_parallel_maintenance_workers": per_gather,
    }


# ------------------------------------------------------------------ PHP-FPM and app servers


def fpm_max_children(memory_mb: int, reserved_mb: int, worker_mb: int) -> int:
    """PHP-FPM children that fit: (memory left after everything else on the host) / per-worker size."""
    return max(2, (memory_mb - reserved_mb) // max(1, worker_mb))


def fpm_spare_servers(max_children: int) -> tuple[int, int, int]:
    """(start_servers, min_spare_servers, max_spare_servers) for ``pm = dynamic``: 25% / 25% / 75%."""
    low = max(1, max_children // 4)
    high = max(low + 1, max_children * 3 // 4)
    return low, low, high


def one_per_core(cpus: int, configured: int = 0) -> int:
    """Processes of an event-loop server (uvicorn workers, Node.js instances): one per core, unless configured."""
    return configured if configured > 0 else max(1, cpus)


def app_keepalive_seconds(nginx_upstream_idle_seconds: int) -> int:
    """The app server's keep-alive must outlast nginx's idle upstream connections, or nginx reuses dead ones."""
    return nginx_upstream_idle_seconds + 15


def mariadb_web(memory_mb: int, cpus: int, buffer_pool_share: float, max_connections: int) -> dict[str, int]:
    """InnoDB and thread settings for a MariaDB host serving web apps (sizes in MB).

    The buffer pool takes its share of memory (at least 128 MB); the redo log a quarter of the pool (48 MB to
    2 GB: large enough for bursts of writes, small enough for a quick crash recovery); a thread cache of
    8 + max_connections / 100 (MySQL's own formula, at most 100); 400 open tables per core, 2000 at least;
    one buffer-pool instance per GB at most 8 (below 1 GB, one)."""
    pool = max(128, int(memory_mb * buffer_pool_share))
    return {
        "innodb_buffer_pool_size_mb": pool,
        "innodb_log_file_size_mb": min(2048, max(48, pool // 4)),
        "innodb_buffer_pool_instances": max(1, min(8, pool // 1024)),
        "thread_cache_size": min(100, 8 + max_connections // 100),
        "table_open_cache": max(2000, 400 * cpus),
        "max_connections": max_connections,
    }
