"""testinfra checks of the pgbouncer_exporter role: it reads PgBouncer's console and reports both entries' pools
(rw and ro) with their sizes, and its password file is root's alone."""

from typing import Any


def test_both_entries_pools_are_reported(host: Any, hostvars: dict[str, Any]) -> None:
    page = host.check_output(f"curl -sf http://{hostvars['ansible_host']}:{hostvars['pgbouncer_exporter_port']}"
                             "/metrics")
    assert "pgbouncer_up 1" in page.splitlines()
    for entry in (hostvars["pgbouncer_rw_name"], hostvars["pgbouncer_ro_name"]):
        assert f'pgbouncer_pools_client_waiting_connections{{database="{entry}",' in page, entry
        assert f'pgbouncer_databases_pool_size{{name="{entry}"}} {float(hostvars["pgbouncer_default_pool_size"])}' \
            in page, entry


def test_the_stats_password_is_root_only(host: Any) -> None:
    secret = host.file("/etc/fabstack-pgbouncer-exporter.secret")
    assert secret.user == "root" and secret.mode == 0o600
