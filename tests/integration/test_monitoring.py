"""Monitoring proven by breaking things on the sandbox: each failure is caused for real, and its alert must reach
the receiver on the monitoring host within twice its 'for' plus a scrape interval (the delay is printed)."""

from __future__ import annotations

import json
import re
import time

from fabstack.inventory import load_inventory
from tests.conftest import REPO
from tests.integration.conftest import in_host

RECEIVED = "/var/lib/fabstack-alerts/received.jsonl"


def seconds(duration: str) -> float:
    """A Prometheus duration (30s, 5m, 1h) in seconds."""
    number, unit = re.fullmatch(r"(\d+)([smhd])", duration).groups()
    return int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def firing(since: float) -> list[dict]:
    """Alerts the receiver recorded as firing after ``since`` (epoch seconds), with when each arrived."""
    found = []
    for line in in_host("mon1", f"cat {RECEIVED} 2>/dev/null").stdout.splitlines():
        entry = json.loads(line)
        if entry["received"] < since:
            continue
        found += [dict(alert["labels"], received=entry["received"]) for alert in entry["notification"]["alerts"]
                  if alert["status"] == "firing"]
    return found


def wait_for_alerts(wanted: dict[str, dict[str, str]], since: float, bound: float) -> dict[str, float]:
    """Wait until each wanted alert (name -> labels it must carry) has arrived; returns each one's delay."""
    delays: dict[str, float] = {}
    deadline = time.time() + bound + 30  # the assertion below holds each to its own bound
    while time.time() < deadline and len(delays) < len(wanted):
        for alert in firing(since):
            name = alert["alertname"]
            if name in wanted and name not in delays and all(alert.get(k) == v for k, v in wanted[name].items()):
                delays[name] = alert["received"] - since
        time.sleep(2)
    return delays


def reachable(source: str, address: str, port: int) -> bool:
    """Whether a TCP connection from the sandbox host ``source`` to ``address:port`` opens."""
    return in_host(source, f"timeout 2 bash -c '</dev/tcp/{address}/{port}'").returncode == 0


def test_every_exporter_answers_the_monitoring_host_alone(deployed: list) -> None:
    from fabstack.project import load_project
    from fabstack.role import load_role

    project = load_project(REPO, "sandbox")
    exporters = load_role(REPO / "roles", "prometheus").module.EXPORTERS
    checked = 0
    for name in project.inventory.hosts:
        values = project.setup(name, None).vars
        for job, port_key in exporters:
            if port_key in values:
                outsider = "app1" if name != "app1" else "app2"
                assert reachable("mon1", values["ansible_host"], values[port_key]), (name, job)
                assert not reachable(outsider, values["ansible_host"], values[port_key]), (name, job, outsider)
                checked += 1
    assert checked >= len(project.inventory.hosts) + 3  # node everywhere; nginx, its log and redis once each


def test_a_stopped_exporter_and_a_failed_unit_reach_the_receiver_in_time(deployed: list) -> None:
    values = load_inventory(REPO, "sandbox").resolve("mon1").values
    scrape = seconds(values.get("prometheus_scrape_interval", "15s"))
    bounds = {"TargetDown": 2 * seconds(values.get("alert_target_down_for", "1m")) + scrape,
              "SystemdUnitFailed": 2 * seconds(values.get("alert_unit_failed_for", "1m")) + scrape}
    since = time.time()
    try:
        in_host("cache1", "systemctl stop prometheus-node-exporter")  # a service stopped: its target goes down
        in_host("db2", "systemd-run --unit fabstack-doomed --property=Restart=no /bin/false")  # a unit fails
        delays = wait_for_alerts({"TargetDown": {"host": "cache1", "job": "node"},
                                  "SystemdUnitFailed": {"host": "db2", "name": "fabstack-doomed.service"}},
                                 since, max(bounds.values()))
    finally:
        in_host("cache1", "systemctl start prometheus-node-exporter")
        in_host("db2", "systemctl reset-failed fabstack-doomed.service")
    for name, bound in bounds.items():
        print(f"{name}: reached the receiver {delays.get(name, float('nan')):.0f}s after the failure "
              f"(bound {bound:.0f}s)")
        assert name in delays and delays[name] <= bound, (name, delays, bounds)


def test_a_queue_filled_past_its_threshold_reaches_the_receiver_in_time(deployed: list) -> None:
    values = load_inventory(REPO, "sandbox").resolve("mon1").values
    depth = int(values.get("alert_queue_depth", 1000))
    bound = 2 * seconds(values.get("alert_queue_for", "1m")) + seconds(values.get("prometheus_scrape_interval", "15s"))
    admin = in_host("cache1", "sed -n 's/^REDIS_PASSWORD=//p' /etc/default/prometheus-redis-exporter").stdout.strip()
    cli = f"REDISCLI_AUTH='{admin}' redis-cli --no-auth-warning --user admin -h 127.0.0.1"
    # the queue's consumer stopped (as when workers die), then more jobs than the threshold: placeholders that
    # no worker ever sees, removed before the consumer comes back
    in_host("cache1", "supervisorctl stop celery-low")
    try:
        out = in_host("cache1", f"seq {depth + 1} | sed 's/^/RPUSH low fabstack-test-/' | {cli} >/dev/null && "
                                f"{cli} llen low")
        since = time.time()  # the queue is past its threshold from now on
        assert out.stdout.strip() == str(depth + 1), out.stdout + out.stderr
        delays = wait_for_alerts({"QueueDepthHigh": {"host": "cache1", "key": "low"}}, since, bound)
    finally:
        in_host("cache1", f"{cli} del low; supervisorctl start celery-low")
    print(f"QueueDepthHigh: reached the receiver {delays.get('QueueDepthHigh', float('nan')):.0f}s after the queue "
          f"passed {depth} (bound {bound:.0f}s)")
    assert delays.get("QueueDepthHigh", bound + 1) <= bound, delays
