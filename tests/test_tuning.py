"""Golden cases for the tuning formulas."""

from fabstack.stack import tuning


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


def test_pgtune_web_golden_16gb_8cpu_ssd() -> None:
    settings = tuning.pgtune_web(16 * 1024, 8, ssd=True, max_connections=200)
    assert settings["shared_buffers"] == "4GB"
    assert settings["effective_cache_size"] == "12GB"
    assert settings["maintenance_work_mem"] == "1GB"
    assert settings["wal_buffers"] == "16MB"
    assert settings["max_parallel_workers_per_gather"] == 4
    assert settings["random_page_cost"] == 1.1 and settings["effective_io_concurrency"] == 200


def test_pgtune_web_golden_work_mem_cases() -> None:
    # PGTune's own outputs for web / SSD / 200 connections
    assert tuning.pgtune_web(4 * 1024, 2, True, 200)["work_mem"] == "5242kB"
    assert tuning.pgtune_web(4 * 1024, 2, True, 200)["maintenance_work_mem"] == "256MB"
    assert tuning.pgtune_web(12 * 1024, 16, True, 200)["work_mem"] == "3932kB"
    assert tuning.pgtune_web(12 * 1024, 16, True, 200)["maintenance_work_mem"] == "768MB"
    small = tuning.pgtune_web(2 * 1024, 8, True, 200)
    assert (small["shared_buffers"], small["effective_cache_size"], small["work_mem"]) == ("512MB", "1536MB", "655kB")


def test_pgtune_caps_maintenance_work_mem_and_follows_disk_kind() -> None:
    big = tuning.pgtune_web(64 * 1024, 32, ssd=False, max_connections=100)
    assert big["maintenance_work_mem"] == "2GB"
    assert big["random_page_cost"] == 4 and big["effective_io_concurrency"] == 2
    assert big["max_parallel_workers_per_gather"] == 4 and big["max_parallel_workers"] == 32


def test_fpm_children_from_memory_and_worker_size() -> None:
    assert tuning.fpm_max_children(2048 * 6 // 10 - 128, 0, 64) == 17
    assert tuning.fpm_spare_servers(17) == (4, 4, 12)


def test_app_keepalive_outlasts_nginx_idle_timeout() -> None:
    assert tuning.app_keepalive_seconds(60) > 60


def test_size_parsing_and_formatting() -> None:
    assert tuning.parse_size_mb("2g") == 2048 and tuning.parse_size_mb("512MB") == 512
    assert tuning.pg_size(1024 * 1024) == "1GB" and tuning.pg_size(27594) == "27594kB"


def test_mariadb_sizes_follow_memory_and_cores() -> None:
    small = tuning.mariadb_web(1024, 1, 0.5, 210)
    assert small == {"innodb_buffer_pool_size_mb": 512, "innodb_log_file_size_mb": 128,
                     "innodb_buffer_pool_instances": 1, "thread_cache_size": 10, "table_open_cache": 2000,
                     "max_connections": 210}
    large = tuning.mariadb_web(65536, 32, 0.5, 2000)
    assert large["innodb_buffer_pool_size_mb"] == 32768
    assert large["innodb_log_file_size_mb"] == 2048  # capped: crash recovery stays quick
    assert large["innodb_buffer_pool_instances"] == 8
    assert large["thread_cache_size"] == 28 and large["table_open_cache"] == 12800
    assert tuning.mariadb_web(128, 1, 0.1, 10)["innodb_buffer_pool_size_mb"] == 128  # never below 128 MB
