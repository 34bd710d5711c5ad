"""Monitoring proven by breaking things on the sandbox: each failure is caused for real, and its alert must reach
the receiver on the monitoring host within twice its 'for' plus a scrape interval (the delay is printed)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from fabstack.tiers.env import load_env
from tests.conftest import REPO
from tests.integration.chaos import Load
from tests.integration.conftest import in_host

RECEIVED = "/var/lib/fabstack-alerts/received.jsonl"


def seconds(duration: str) -> float:
    """A Prometheus duration (30s, 5m, 1h) in seconds."""
    number, unit = re.fullmatch(r"(\d+)([smhd])", duration).groups()
    return int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def settings(host: str = "mon1") -> dict[str, Any]:
    """A sandbox host's resolved settings (role defaults included)."""
    return load_env(REPO, "sandbox").setup(host, None).vars


def primary_and_replica() -> tuple[str, str]:
    """The db hosts' current roles, as the recorded topology says (an earlier failover test may have swapped
    them)."""
    groups = load_env(REPO, "sandbox").groups()
    return groups["db_primary"][0], groups["db_replica"][0]


def bound(for_key: str) -> float:
    """How long an alert may take to reach the receiver: twice its 'for' plus a scrape interval."""
    values = settings()
    return 2 * seconds(values[for_key]) + seconds(values["prometheus_scrape_interval"])


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


def wait_for_alerts(wanted: dict[str, dict[str, str]], since: float, bounds: dict[str, float]) -> dict[str, float]:
    """Wait until each wanted alert (a name, or name/severity -> labels it must carry) has arrived, or its bound
    has passed by half a minute; returns each one's delay after ``since``."""
    delays: dict[str, float] = {}
    deadline = since + max(bounds.values()) + 30  # the check below holds each to its own bound
    while time.time() < deadline and len(delays) < len(wanted):
        for alert in firing(since):
            for key, labels in wanted.items():
                name = key.split("/")[0]
                if key not in delays and alert["alertname"] == name and \
                        all(alert.get(k) == v for k, v in labels.items()):
                    delays[key] = alert["received"] - since
        time.sleep(2)
    return delays


def check_delays(delays: dict[str, float], bounds: dict[str, float], cause: str) -> None:
    """Print each alert's delay after the cause, and hold it to its bound."""
    for name, limit in bounds.items():
        print(f"{name}: reached the receiver {delays.get(name, float('nan')):.0f}s after {cause} (bound {limit:.0f}s)")
    late = {name: delays.get(name) for name, limit in bounds.items() if delays.get(name, limit + 1) > limit}
    assert not late, (late, bounds)


def reachable(source: str, address: str, port: int) -> bool:
    """Whether a TCP connection from the sandbox host ``source`` to ``address:port`` opens."""
    return in_host(source, f"timeout 2 bash -c '</dev/tcp/{address}/{port}'").returncode == 0


def test_every_exporter_answers_the_monitoring_host_alone(deployed: list) -> None:
    from fabstack.engine.role import load_role

    project = load_env(REPO, "sandbox")
    exporters = load_role(REPO / "roles", "prometheus").module.EXPORTERS
    probes = []  # (source, host, job, address, port, whether it must open)
    for name in project.inventory.hosts:
        values = project.setup(name, None).vars
        for job, port_key in exporters:
            if port_key in values:
                outsider = "app1" if name != "app1" else "app2"
                target = (values["ansible_host"], values[port_key])
                probes += [("mon1", name, job, *target, True), (outsider, name, job, *target, False)]
    with ThreadPoolExecutor(max_workers=8) as pool:  # a closed port waits out its timeout: wait for all at once
        opened = list(pool.map(lambda probe: reachable(probe[0], probe[3], probe[4]), probes))
    wrong = [(source, name, job, "open" if was else "closed")
             for (source, name, job, _, _, should), was in zip(probes, opened, strict=True) if was != should]
    assert not wrong, wrong
    # node everywhere; nginx and its log once; redis, pgbouncer once; postgres twice; php-fpm twice
    assert len(probes) // 2 >= len(project.inventory.hosts) + 8


def test_a_stopped_exporter_and_a_failed_unit_reach_the_receiver_in_time(deployed: list) -> None:
    bounds = {"TargetDown": bound("alert_target_down_for"), "SystemdUnitFailed": bound("alert_unit_failed_for")}
    since = time.time()
    try:
        in_host("cache1", "systemctl stop prometheus-node-exporter")  # a service stopped: its target goes down
        in_host("db2", "systemd-run --unit fabstack-doomed --property=Restart=no /bin/false")  # a unit fails
        delays = wait_for_alerts({"TargetDown": {"host": "cache1", "job": "node"},
                                  "SystemdUnitFailed": {"host": "db2", "name": "fabstack-doomed.service"}},
                                 since, bounds)
    finally:
        in_host("cache1", "systemctl start prometheus-node-exporter")
        in_host("db2", "systemctl reset-failed fabstack-doomed.service")
    check_delays(delays, bounds, "the failure")


def test_a_queue_filled_past_its_threshold_reaches_the_receiver_in_time(deployed: list) -> None:
    depth = int(settings()["alert_queue_depth"])
    bounds = {"QueueDepthHigh": bound("alert_queue_for")}
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
        delays = wait_for_alerts({"QueueDepthHigh": {"host": "cache1", "key": "low"}}, since, bounds)
    finally:
        in_host("cache1", f"{cli} del low; supervisorctl start celery-low")
    check_delays(delays, bounds, f"the queue passed {depth}")


def test_a_stopped_replica_reaches_the_receiver_in_time(deployed: list) -> None:
    primary, replica = primary_and_replica()
    values = settings(replica)
    bounds = {"ReplicaNotStreaming": bound("alert_replica_for"), "PostgresDown": bound("alert_postgres_down_for")}
    since = time.time()
    try:
        in_host(replica, f"systemctl stop {values['postgresql_service']}")
        delays = wait_for_alerts({"ReplicaNotStreaming": {"host": primary, "slot": values["postgresql_slot"]},
                                  "PostgresDown": {"host": replica}}, since, bounds)
    finally:
        in_host(replica, f"systemctl start {values['postgresql_service']}")
        streaming = "select count(*) from pg_stat_replication where state = 'streaming'"
        for _ in range(30):  # leave it streaming again for the tests after this one
            if in_host(primary, f"runuser -u postgres -- psql -X -At -c \"{streaming}\"").stdout.strip() == "1":
                break
            time.sleep(1)
    check_delays(delays, bounds, "PostgreSQL stopped on the replica")


def test_a_slow_endpoint_under_load_reaches_the_receiver_in_time(deployed: list) -> None:
    bounds = {f"AppLatencyHigh/{severity}": bound("alert_http_for") for severity in ("warning", "critical")}
    window = seconds(settings()["alert_http_window"])
    cycles = int((max(bounds.values()) + window + 30) / 2) + 1
    # the replica the FastAPI page reads from stalls, as on a saturated disk: the app's sessions there are
    # stopped for 2 s again and again (new ones still open), so each request waits up to 2 s; bounded in cycles,
    # resumed on leaving
    script = (f"for i in $(seq {cycles}); do pkill -STOP -f '^postgres: [^ ]+: app app '; sleep 2; "
              "pkill -CONT -f '^postgres: [^ ]+: app app '; sleep 0.1; done\n")
    _, replica = primary_and_replica()
    in_host(replica, f"cat > /run/fabstack-test-stalls.sh <<'EOF'\n{script}EOF")
    started = in_host(replica, f"systemd-run --unit fabstack-test-stalls --property=RuntimeMaxSec={cycles * 3} "
                             "sh /run/fabstack-test-stalls.sh && sleep 1 && systemctl is-active fabstack-test-stalls")
    assert started.stdout.strip() == "active", started.stdout + started.stderr
    try:
        with Load("/api/", limit=2000, seconds=max(bounds.values()) + window + 30) as load:
            since = time.time()
            delays = wait_for_alerts({key: {"app": "app_fastapi", "severity": key.split("/")[1]} for key in bounds},
                                     since, bounds)
    finally:
        in_host(replica, "systemctl stop fabstack-test-stalls; systemctl reset-failed fabstack-test-stalls; "
                       "pkill -CONT -u postgres; rm -f /run/fabstack-test-stalls.sh")
    print(f"load: {load.statuses} answers, {len(load.errors)} failed connections")
    check_delays(delays, bounds, "the replica began stalling")


@contextmanager
def table_renamed(table: str) -> Iterator[None]:
    """The apps' table gone under another name (as after a broken migration), put back on leaving."""
    sql = "alter table {} rename to {}"
    psql = "runuser -u postgres -- psql -X -q -d app -c"
    primary, _ = primary_and_replica()
    renamed = in_host(primary, f"{psql} '{sql.format(table, table + '_away')}'")
    assert renamed.returncode == 0, renamed.stderr
    try:
        yield
    finally:
        in_host(primary, f"{psql} '{sql.format(table + '_away', table)}'")


def test_an_app_answering_500s_reaches_the_receiver_in_time(deployed: list) -> None:
    bounds = {f"AppErrorRateHigh/{severity}": bound("alert_http_for") for severity in ("warning", "critical")}
    # the FastAPI app's page reads the items table: without it every answer is a 500 from the app itself
    with table_renamed("items"), Load("/api/", limit=3000, seconds=max(bounds.values()) + 30) as load:
        since = time.time()
        delays = wait_for_alerts({key: {"app": "app_fastapi", "severity": key.split("/")[1]} for key in bounds},
                                 since, bounds)
    print(f"load: {load.statuses} answers, {len(load.errors)} failed connections")
    assert load.statuses.get(500, 0) > 0, load.statuses
    check_delays(delays, bounds, "the app began answering 500")


@contextmanager
def small_disk(host: str, mountpoint: str, megabytes: int = 64) -> Iterator[str]:
    """A small ext4 file system of its own (a loop device on this machine) mounted inside a sandbox host, so that
    filling it fills no real disk; unmounted and removed on leaving."""
    image = f"/var/tmp/fabstack-{host}-disk.img"
    subprocess.run(["truncate", "-s", f"{megabytes}M", image], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True)
    device = subprocess.run(["losetup", "-f", "--show", image], check=True, capture_output=True,
                            text=True).stdout.strip()
    pid = subprocess.run(["podman", "inspect", "-f", "{{.State.Pid}}", f"fabstack-{host}"], check=True,
                         capture_output=True, text=True).stdout.strip()
    node = "/dev/fabstack-test-disk"
    major, minor = (int(part, 16) for part in subprocess.run(["stat", "-c", "%t %T", device], check=True,
                                                             capture_output=True, text=True).stdout.split())
    inside = ["nsenter", "-t", pid, "-m", "sh", "-c"]
    try:
        subprocess.run([*inside, f"mknod {node} b {major} {minor} && mkdir -p {mountpoint} && "
                                 f"mount {node} {mountpoint}"], check=True)
        yield mountpoint
    finally:
        subprocess.run([*inside, f"umount {mountpoint}; rmdir {mountpoint}; rm -f {node}"], check=False)
        subprocess.run(["losetup", "-d", device], check=False)
        subprocess.run(["rm", "-f", image], check=False)


def test_a_disk_filling_up_reaches_the_receiver_in_time(deployed: list) -> None:
    bounds = {"DiskAlmostFull": bound("alert_disk_full_for"), "DiskFullSoon": bound("alert_disk_full_for")}
    # a mount point of its own each run: a new series, whose trend no earlier run's samples bend
    with small_disk("db1", f"/srv/fabstack-test-disk-{time.time_ns()}") as mountpoint:
        time.sleep(2 * seconds(settings()["prometheus_scrape_interval"]))  # seen empty first: a trend to follow
        # what a runaway log does, in a few steps: all but about 1 % of the file system, then it stays full
        in_host("db1", f"fallocate -l $(( $(stat -f -c '%a*%S' {mountpoint}) - 600*1024 )) {mountpoint}/fill")
        since = time.time()
        delays = wait_for_alerts({name: {"host": "db1", "mountpoint": mountpoint} for name in bounds}, since, bounds)
    check_delays(delays, bounds, f"{mountpoint} filled up")


def test_status_and_the_capacity_report_read_the_sandbox(deployed: list, tmp_path: Any) -> None:
    from fabstack.cli import commands
    from fabstack.day2.fleetstatus import status

    lines: list[str] = []
    status(REPO, "sandbox", out=lines.append)
    rows = {tuple(line.split()[:2]) for line in lines[1:] if line and not line.startswith("FIRING")}
    primary, replica = primary_and_replica()
    for alert, host in (("TargetDown", "mon1"), ("DatabaseConnectionsHigh", primary), ("ReplicaNotStreaming", replica),
                        ("PgBouncerClientsWaiting", "cache1"), ("PhpFpmPoolSaturated", "app1"),
                        ("QueueDepthHigh", "cache1")):
        assert (alert, host) in rows, (alert, host, lines)
    assert commands.capacity(REPO, "sandbox", report=tmp_path / "capacity.html") == 0
    page = (tmp_path / "capacity.html").read_text()
    hosts = load_env(REPO, "sandbox").inventory.hosts
    assert all(f">{host}</text>" in page for host in hosts)
    assert f"scrapes the exporters of {len(hosts)} hosts" in page
