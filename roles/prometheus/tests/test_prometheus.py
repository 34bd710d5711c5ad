"""testinfra checks of the prometheus role: every target the inventory names is up, the rules pass promtool's
unit tests with synthetic series, and an alert travels to the receiver."""

import json
from typing import Any

RULES = "/etc/prometheus/rules/fabstack.yml"


def query(host: Any, hostvars: dict[str, Any], expr: str) -> list[dict[str, Any]]:
    """An instant query against this host's Prometheus."""
    out = host.check_output(f"curl -sf --get http://{hostvars['ansible_host']}:{hostvars['prometheus_port']}"
                            f"/api/v1/query --data-urlencode 'query={expr}'")
    return json.loads(out)["data"]["result"]


def test_every_exporter_of_the_inventory_is_a_target_and_up(host: Any, hostvars: dict[str, Any],
                                                            fleet: dict[str, Any]) -> None:
    import time

    from fabstack.engine.bundled import ENGINE_ROOT
    from fabstack.engine.role import load_role

    exporters = load_role(ENGINE_ROOT / "roles", "prometheus").module.EXPORTERS
    wanted = {(job, name) for name, entry in fleet.items() for job, port_key in exporters
              if port_key in entry["vars"]}
    for _ in range(40):  # a target added by this deploy is scraped within a scrape interval or two
        up = {(r["metric"]["job"], r["metric"]["host"]): r["value"][1] for r in query(host, hostvars, "up")}
        if wanted <= set(up) and all(up[target] == "1" for target in wanted):
            break
        time.sleep(1)
    assert wanted <= set(up), sorted(wanted - set(up))
    assert all(up[target] == "1" for target in wanted), {t: up[t] for t in wanted if up[t] != "1"}


def rule_tests(hostvars: dict[str, Any]) -> str:
    """promtool unit tests of the rules, from this env's thresholds: each alert fires on a series past its
    threshold for its 'for', and stays quiet on one just inside it."""
    percent = hostvars["alert_memory_available_percent"]
    tests = {
        "rule_files": [RULES],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m",
             "input_series": [
                 {"series": 'up{job="node",host="a"}', "values": "0x15"},
                 {"series": 'up{job="node",host="b"}', "values": "1x15"},
                 {"series": 'node_systemd_unit_state{state="failed",name="nginx.service",host="a"}',
                  "values": "1x15"},
                 {"series": 'node_memory_MemTotal_bytes{host="a"}', "values": "1000x15"},
                 {"series": 'node_memory_MemAvailable_bytes{host="a"}', "values": f"{percent * 10 - 5}x15"},
                 {"series": 'node_memory_MemTotal_bytes{host="b"}', "values": "1000x15"},
                 {"series": 'node_memory_MemAvailable_bytes{host="b"}', "values": f"{percent * 10 + 5}x15"},
             ],
             "alert_rule_test": [
                 {"eval_time": "15m", "alertname": "TargetDown",
                  "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "node", "host": "a"},
                                  "exp_annotations": {"summary": "node on a is not answering scrapes"}}]},
                 {"eval_time": "15m", "alertname": "SystemdUnitFailed",
                  "exp_alerts": [{"exp_labels": {"severity": "warning", "state": "failed", "name": "nginx.service",
                                                 "host": "a"},
                                  "exp_annotations": {"summary": "unit nginx.service failed on a"}}]},
                 {"eval_time": "15m", "alertname": "MemoryLow",
                  "exp_alerts": [{"exp_labels": {"severity": "warning", "host": "a"},
                                  "exp_annotations": {"summary": f"a has under {percent} % of its memory "
                                                                 "available"}}]},
                 {"eval_time": "15m", "alertname": "MemoryCritical", "exp_alerts": []},
             ]},
            {"interval": "1m",
             "input_series": [  # shop: 10 % of its answers are errors; api: none
                 {"series": 'fabstack_http_requests_total{app="shop",status="200"}', "values": "0+90x20"},
                 {"series": 'fabstack_http_requests_total{app="shop",status="500"}', "values": "0+10x20"},
                 {"series": 'fabstack_http_requests_total{app="api",status="200"}', "values": "0+100x20"},
             ],
             "alert_rule_test": [
                 {"eval_time": "20m", "alertname": "AppErrorRateHigh",
                  "exp_alerts": [{"exp_labels": {"severity": severity, "app": "shop"},
                                  "exp_annotations": {"summary": f"over {hostvars[key]} % of shop's answers through "
                                                                 "the LB are errors"}}
                                 for severity, key in (("warning", "alert_error_rate_warning_percent"),
                                                       ("critical", "alert_error_rate_critical_percent"))]},
             ]},
            database_tests(hostvars),
            patroni_tests(hostvars),
            archive_tests(hostvars),
        ],
    }
    return json.dumps(tests)  # JSON is YAML


def rule_test(series: dict[str, str], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """One promtool test: the series (sampled each minute) and the alerts expected at given times."""
    return {"interval": "1m", "input_series": [{"series": name, "values": values} for name, values in series.items()],
            "alert_rule_test": checks}


def fired(severity: str, summary: str, **labels: str) -> dict[str, Any]:
    """One alert promtool must see firing: its labels (severity included) and its summary."""
    return {"exp_labels": {"severity": severity, **labels}, "exp_annotations": {"summary": summary}}


def database_tests(v: dict[str, Any]) -> dict[str, Any]:
    """The database tier's rules and the disk's: each past its threshold for 20 minutes (longer than any 'for'),
    beside a series just inside it that must stay quiet."""
    mb = 1048576
    used = v["alert_db_connections_percent"]
    waiting = v["alert_pgbouncer_waiting_clients"]
    lag_mb, lag_s = v["alert_replication_lag_mb"], v["alert_replication_lag_seconds"]
    slot_mb = v["alert_slot_retained_mb"]
    free = v["alert_disk_free_critical_percent"]
    series = {
        'pg_up{host="db1"}': "1x20", 'pg_up{host="db2"}': "0x20",
        'fabstack_pg_connections_max{host="db1"}': "100x20",
        'fabstack_pg_connections_used{host="db1"}': f"{used + 1}x20",
        'fabstack_pg_connections_max{host="db3"}': "100x20",
        'fabstack_pg_connections_used{host="db3"}': f"{used}x20",
        'fabstack_pg_slot_active{host="db1",slot="db2"}': "0x20",
        'fabstack_pg_slot_retained_bytes{host="db1",slot="db2"}': f"{(slot_mb + 1) * mb}x20",
        'fabstack_pg_slot_active{host="db1",slot="db3"}': "1x20",
        'fabstack_pg_slot_retained_bytes{host="db1",slot="db3"}': f"{(slot_mb + 1) * mb}x20",
        'fabstack_pg_replica_streaming{host="db3"}': "0x20",
        'fabstack_pg_replica_lag_seconds{host="db3"}': f"{lag_s + 1}x20",
        'fabstack_pg_replication_lag_bytes{host="db1",replica="db3"}': f"{(lag_mb + 1) * mb}x20",
        'fabstack_pg_replication_lag_bytes{host="db1",replica="db4"}': f"{lag_mb * mb}x20",
        'pgbouncer_pools_client_waiting_connections{host="cache1",database="app",user="app"}': f"{waiting + 1}x20",
        'pgbouncer_pools_client_waiting_connections{host="cache1",database="app_ro",user="app"}': f"{waiting}x20",
        'node_filesystem_size_bytes{host="db1",mountpoint="/srv",fstype="ext4"}': "100x20",
        'node_filesystem_avail_bytes{host="db1",mountpoint="/srv",fstype="ext4"}': f"{free - 1}x20",
    }
    return rule_test(series, [
        {"eval_time": "20m", "alertname": "PostgresDown",
         "exp_alerts": [fired("critical", "PostgreSQL on db2 does not answer", host="db2")]},
        {"eval_time": "20m", "alertname": "DatabaseConnectionsHigh",
         "exp_alerts": [fired("warning", f"PostgreSQL on db1 uses over {used} % of max_connections",
                              host="db1")]},
        {"eval_time": "20m", "alertname": "ReplicaNotStreaming",
         "exp_alerts": [fired("critical", "no replica streams through slot db2 on db1", host="db1",
                              slot="db2"),
                        fired("critical", "replica db3 is not streaming from its primary", host="db3")]},
        {"eval_time": "20m", "alertname": "ReplicationLagHigh",
         "exp_alerts": [fired("warning", f"replica db3 of db1 is over {lag_mb} MB of WAL behind",
                              host="db1", replica="db3"),
                        fired("warning", f"replica db3 replays over {lag_s} s behind its primary",
                              host="db3")]},
        {"eval_time": "20m", "alertname": "ReplicationSlotRetainingWal",
         "exp_alerts": [fired("warning", f"unused slot db2 on db1 holds over {slot_mb} MB of WAL",
                              host="db1", slot="db2")]},
        {"eval_time": "20m", "alertname": "PgBouncerClientsWaiting",
         "exp_alerts": [fired("warning", f"over {waiting} clients wait for a server connection to app "
                                             "on cache1", host="cache1", database="app")]},
        {"eval_time": "20m", "alertname": "DiskAlmostFull",
         "exp_alerts": [fired("critical", f"/srv on db1 has under {free} % of its space left", host="db1",
                              mountpoint="/srv", fstype="ext4")]},
    ])


def patroni_tests(v: dict[str, Any]) -> dict[str, Any]:
    """The Patroni rules: a cluster whose members all say they do not lead (beside one that has a leader), a
    member that lost etcd (beside one that reached it just now), one not running its server, one waiting for a
    restart."""
    dcs = v["alert_patroni_dcs_seconds"]
    series = {
        'patroni_primary{scope="lost",host="pdb1"}': "0x120", 'patroni_primary{scope="lost",host="pdb2"}': "0x120",
        'patroni_primary{scope="fine",host="pdb3"}': "1x120", 'patroni_primary{scope="fine",host="pdb4"}': "0x120",
        # seconds since the epoch, sampled each minute: pdb1 stopped reaching etcd at 0, pdb3 reaches it each time
        'patroni_dcs_last_seen{host="pdb1"}': "0x120", 'patroni_dcs_last_seen{host="pdb3"}': "0+60x120",
        'patroni_postgres_running{host="pdb2"}': "0x120", 'patroni_postgres_running{host="pdb3"}': "1x120",
        'patroni_pending_restart{host="pdb4"}': "1x120", 'patroni_pending_restart{host="pdb3"}': "0x120",
    }
    return rule_test(series, [
        {"eval_time": "120m", "alertname": "PatroniNoLeader",
         "exp_alerts": [fired("critical", "no member of Patroni cluster lost leads: writes are refused",
                              scope="lost")]},
        {"eval_time": "120m", "alertname": "PatroniEtcdUnreachable",
         "exp_alerts": [fired("critical", f"Patroni on pdb1 has not reached etcd for over {dcs} s",
                              host="pdb1")]},
        {"eval_time": "120m", "alertname": "PatroniPostgresNotRunning",
         "exp_alerts": [fired("critical", "Patroni on pdb2 does not run its PostgreSQL", host="pdb2")]},
        {"eval_time": "120m", "alertname": "PatroniPendingRestart",
         "exp_alerts": [fired("warning", "PostgreSQL on pdb4 waits for a restart to take its settings "
                                         "(patronictl restart)", host="pdb4")]},
    ])


def archive_tests(v: dict[str, Any]) -> dict[str, Any]:
    """The WAL archive rules: a leader whose archiving fails (beside one whose archiving works), one with a
    backlog past the bound (beside one just under it)."""
    bound = v["alert_archive_pending_segments"]
    series = {
        'fabstack_pg_archiver_failing{host="pdb1"}': "1x60", 'fabstack_pg_archiver_failing{host="pdb2"}': "0x60",
        'fabstack_pg_archiver_pending_segments{host="pdb3"}': f"{bound + 1}x60",
        'fabstack_pg_archiver_pending_segments{host="pdb4"}': f"{bound}x60",
    }
    return rule_test(series, [
        {"eval_time": "60m", "alertname": "WalArchiveFailing",
         "exp_alerts": [fired("critical", "pdb1 cannot archive its WAL: a point-in-time restore stops at its "
                                          "last archived segment", host="pdb1")]},
        {"eval_time": "60m", "alertname": "WalArchiveBehind",
         "exp_alerts": [fired("warning", f"pdb3 has {bound + 1} WAL segments waiting to be archived",
                              host="pdb3")]},
    ])


def test_rules_pass_promtool_check_and_unit_tests(host: Any, hostvars: dict[str, Any]) -> None:
    assert host.run(f"promtool check rules {RULES}").rc == 0
    path = "/tmp/fabstack-rules-test.yml"
    host.check_output(f"cat > {path} <<'EOF'\n{rule_tests(hostvars)}\nEOF")
    try:
        out = host.run(f"promtool test rules {path}")
        assert out.rc == 0, out.stdout + out.stderr
    finally:
        host.run(f"rm -f {path}")


def test_alertmanager_delivers_to_the_receiver(host: Any, hostvars: dict[str, Any]) -> None:
    import time

    if hostvars["alertmanager_webhook_url"]:
        return  # a real webhook: nothing of ours records what it gets
    marker = f"fabstack-verify-{time.time_ns()}"
    alert = json.dumps([{"labels": {"alertname": marker, "host": "verify"}}])
    host.check_output(f"curl -sf -XPOST -H 'Content-Type: application/json' "
                      f"http://127.0.0.1:{hostvars['alertmanager_port']}/api/v2/alerts -d '{alert}'")
    for _ in range(60):
        if marker in host.run("cat /var/lib/fabstack-alerts/received.jsonl").stdout:
            break
        time.sleep(1)
    assert marker in host.run("cat /var/lib/fabstack-alerts/received.jsonl").stdout
