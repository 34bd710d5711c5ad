"""prometheus: Prometheus and Alertmanager (Debian's packages) on the monitoring hosts; scrape targets from the
inventory, alert rules with the roadmaps' thresholds, each config checked by promtool / amtool before use."""

from __future__ import annotations

from typing import Any

from fabstack.engine.role import HOST_LIB, RoleContext
from fabstack.engine.rolecontract import Inbound
from fabstack.engine.settingspec import DURATION, Setting, positive
from fabstack.engine.tls import ca_certificate
from fabstack.stack.clustertls import cluster_ca_pem

PORTS = ("prometheus_port", "alertmanager_port", "alert_receiver_port")

HANDLERS = {
    "reload systemd": "systemctl daemon-reload",
    "reload prometheus": "systemctl reload prometheus",
    "restart prometheus": "systemctl restart prometheus",
    "reload alertmanager": "systemctl reload prometheus-alertmanager",
    "restart alertmanager": "systemctl restart prometheus-alertmanager",
    "restart alert receiver": "systemctl restart fabstack-alert-receiver",
}

RULES = "/etc/prometheus/rules/fabstack.yml"
# Exporter roles: (job name, the setting holding the port a host of that role exposes). A host is a target of a
# job when it carries the role, i.e. when its variables hold that role's port setting.
EXPORTERS = (("node", "node_exporter_port"), ("nginx", "nginx_exporter_port"), ("nginx_log", "nginx_log_exporter_port"),
             ("redis", "redis_exporter_port"), ("postgres", "postgres_exporter_port"),
             ("pgbouncer", "pgbouncer_exporter_port"), ("php_fpm", "php_fpm_exporter_port"))
# Services that serve their own /metrics on a port others reach too (Patroni's REST API: its peers and the
# routers' checks), scraped as the exporters are.
SERVICE_METRICS = (("patroni", "patroni_rest_port"),)
# Services whose metrics answer over HTTPS with a certificate from the env's Patroni cluster CA, and where
# Prometheus keeps that CA.
CLUSTER_TLS_JOBS = ("patroni",)
CLUSTER_CA_FILE = "/etc/prometheus/patroni-ca.crt"


def inbound(values: dict[str, Any]) -> list[Inbound]:
    """Prometheus's page for the admins (Alertmanager and the receiver listen on 127.0.0.1 only)."""
    return [Inbound((values["prometheus_port"],), "Prometheus: admins")]


SETTINGS = {
    **{key: DURATION for key in (
        "prometheus_scrape_interval", "prometheus_evaluation_interval", "prometheus_retention",
        "alertmanager_group_wait", "alertmanager_repeat_interval", "alert_target_down_for", "alert_unit_failed_for",
        "alert_disk_full_for", "alert_memory_for", "alert_http_for", "alert_http_window", "alert_queue_for",
        "alert_postgres_down_for", "alert_db_connections_for", "alert_replica_for", "alert_replication_lag_for",
        "alert_slot_for", "alert_pgbouncer_for", "alert_phpfpm_for", "alert_patroni_leader_for",
        "alert_patroni_pending_restart_for", "alert_archive_failing_for")},
    **{key: positive(10_000) for key in (
        "alert_backup_age_hours", "alert_certificate_days", "alert_queue_depth", "alert_replication_lag_mb",
        "alert_replication_lag_seconds", "alert_slot_retained_mb", "alert_pgbouncer_waiting_clients",
        "alert_patroni_dcs_seconds", "alert_archive_pending_segments")},
    "alert_disk_full_hours": positive(24 * 90),
    "alert_memory_available_percent": positive(90),
    **{key: Setting(above=0, most=100) for key in (
        "alert_p95_warning_seconds", "alert_p95_critical_seconds", "alert_error_rate_warning_percent",
        "alert_error_rate_critical_percent", "alert_redis_memory_percent", "alert_db_connections_percent",
        "alert_disk_free_critical_percent")},
    "alertmanager_webhook_url": Setting(pattern=r"(https?://[^\s\"'\\\\]+)?",
                                        shape="an http(s) URL without quotes or spaces, or empty", secret=True),
}


def scrape_jobs(ctx: RoleContext) -> list[dict[str, Any]]:
    """One job per exporter kind, with every host of the env that carries it (its address and port); over HTTPS,
    trusting the cluster CA alone, for a service that answers so (the CA file is declared with it)."""
    jobs = []
    for job, port_key in EXPORTERS + SERVICE_METRICS:
        carriers = [(name, values) for name, values in sorted(ctx.hostvars.items()) if port_key in values]
        targets = [{"host": name, "address": f"{ctx.address_of(name)}:{values[port_key]}"} for name, values in carriers]
        if not targets:
            continue
        entry: dict[str, Any] = {"name": job, "targets": targets, "ca_file": ""}
        if job in CLUSTER_TLS_JOBS:
            ctx.file(CLUSTER_CA_FILE, ca_certificate(cluster_ca_pem(ctx, carriers[0][1]["patroni_etcd_group"])),
                     notify="reload prometheus")
            entry["ca_file"] = CLUSTER_CA_FILE
        jobs.append(entry)
    return jobs


def deploy(ctx: RoleContext) -> None:
    """Declare Prometheus, Alertmanager, the rules and (without a webhook) the recording receiver."""
    v = ctx.vars
    address = ctx.facts["primary_address"]
    ctx.packages("prometheus", "prometheus-alertmanager")
    ctx.directory("/etc/prometheus/rules")
    ctx.template("alerts.yml.j2", RULES, validate="promtool check rules %s", notify="reload prometheus")
    ctx.template("prometheus.yml.j2", "/etc/prometheus/prometheus.yml", validate="promtool check config %s",
                 notify="reload prometheus", address=address, rules_file=RULES, jobs=scrape_jobs(ctx))
    ctx.template("prometheus.default.j2", "/etc/default/prometheus", notify="restart prometheus", address=address)
    webhook = v["alertmanager_webhook_url"] or f"http://127.0.0.1:{v['alert_receiver_port']}/"
    # the webhook URL carries its token: readable by Alertmanager's user alone, and never shown in a diff
    ctx.template("alertmanager.yml.j2", "/etc/prometheus/alertmanager.yml", validate="amtool check-config %s",
                 notify="reload alertmanager", webhook_url=webhook, group="prometheus", mode="0640", secret=True)
    ctx.template("alertmanager.default.j2", "/etc/default/prometheus-alertmanager", notify="restart alertmanager")
    if not v["alertmanager_webhook_url"]:
        ctx.file(f"{HOST_LIB}/alert-receiver.py",
                 (ctx.role.path / "files" / "alert-receiver.py").read_bytes(), notify="restart alert receiver")
        ctx.template("fabstack-alert-receiver.service.j2", "/etc/systemd/system/fabstack-alert-receiver.service",
                     script=f"{HOST_LIB}/alert-receiver.py",
                     notify=["reload systemd", "restart alert receiver"])
        ctx.service("fabstack-alert-receiver")
    ctx.service("prometheus")
    ctx.service("prometheus-alertmanager")
