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
