"""Golden cases for the tuning formulas."""

from fabstack import tuning


def test_nofile_is_capped_by_the_hosts_hard_limit() -> None:
    assert tuning.capped_nofile(65536, 20000) == 20000
    assert tuning.capped_nofile(65536, 1048576) == 65536


def test_nginx_workers_follow_cores_unless_configured() -> None:
    assert tuning.nginx_worker_processes(8) == 8
    assert tuning.nginx_worker_processes(8, 2) == 2


def test_nginx_file_limit_is_two_per_connection_plus_headroom() -> None:
    assert tuning.nginx_worker_rlimit_nofile(4096, 1048576) == 8448
    # inside a 20000-file container the limit is capped and connections shrink to fit
    rlimit = tuning.nginx_worker_rlimit_nofile(16384, 20000)
    assert rlimit == 20000
    assert tuning.nginx_worker_connections(16384, rlimit) == 9872
