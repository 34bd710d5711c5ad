"""testinfra checks of the nginx role, run by `inv verify` on every host carrying it."""

import re
from typing import Any


def worker_pids(host: Any) -> list[str]:
    """PIDs of nginx's worker processes (by process name, so the probing shell never matches)."""
    rows = host.check_output("ps -C nginx -o pid=,args=").splitlines()
    return [row.split()[0] for row in rows if "worker process" in row]


def test_nginx_running_and_enabled(host: Any) -> None:
    service = host.service("nginx")
    assert service.is_running
    assert service.is_enabled


def test_config_is_valid(host: Any) -> None:
    assert host.run("nginx -t").rc == 0


def test_workers_follow_cores(host: Any, hostvars: dict[str, Any]) -> None:
    conf = host.file("/etc/nginx/nginx.conf").content_string
    cores = int(host.check_output("nproc"))
    wanted = hostvars["nginx_worker_processes"] or cores
    assert f"worker_processes {wanted};" in conf
    assert len(worker_pids(host)) == wanted


def test_worker_file_limit_holds_two_per_connection(host: Any) -> None:
    conf = host.file("/etc/nginx/nginx.conf").content_string
    rlimit = int(re.search(r"worker_rlimit_nofile (\d+);", conf).group(1))
    connections = int(re.search(r"worker_connections (\d+);", conf).group(1))
    assert rlimit >= 2 * connections
    pid = worker_pids(host)[0]
    limits = host.file(f"/proc/{pid}/limits").content_string
    assert re.search(rf"Max open files\s+{rlimit}\s+{rlimit}", limits)


def test_serves_http(host: Any, hostvars: dict[str, Any]) -> None:
    body = host.check_output(f"curl -sf http://127.0.0.1:{hostvars['nginx_listen_port']}/")
    if hostvars["nginx_site"] == "lb":
        assert "served by app" in body
    else:
        assert f"served by {host.backend.get_hostname()}" in body


def test_lb_spreads_over_upstreams(host: Any, hostvars: dict[str, Any]) -> None:
    if hostvars["nginx_site"] != "lb":
        return
    seen = {host.check_output("curl -sf http://127.0.0.1/") for _ in range(6)}
    assert len(seen) >= 2, seen


def test_server_tokens_off(host: Any) -> None:
    headers = host.check_output("curl -sI http://127.0.0.1/")
    assert re.search(r"^Server: nginx\s*$", headers, re.M)
