"""testinfra checks of the nginx_exporter role: connections from stub_status, and per-app requests and latency
read from the access log after a request through the load balancer."""

import time
from typing import Any


def test_stub_status_metrics(host: Any, hostvars: dict[str, Any]) -> None:
    out = host.check_output(f"curl -sf http://{hostvars['ansible_host']}:{hostvars['nginx_exporter_port']}/metrics")
    assert "nginx_up 1" in out and "nginx_connections_active" in out


def test_requests_and_latency_per_app_from_the_log(host: Any, hostvars: dict[str, Any]) -> None:
    route = hostvars["nginx_lb_routes"][0]
    host.check_output(f"curl -sfk -o /dev/null https://127.0.0.1{route['path']}")
    url = f"http://{hostvars['ansible_host']}:{hostvars['nginx_log_exporter_port']}/metrics"
    for _ in range(20):  # mtail reads the log within a poll interval
        out = host.check_output(f"curl -sf {url}")
        if "fabstack_http_request_duration_seconds_bucket{" in out:
            break
        time.sleep(0.5)
    assert 'fabstack_http_requests_total{app="' in out and "fabstack_http_request_duration_seconds_bucket{" in out
