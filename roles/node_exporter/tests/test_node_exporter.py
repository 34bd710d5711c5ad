"""testinfra checks of the node_exporter role: it answers on the private address, and only the monitoring hosts
may reach it (probed from the other hosts)."""

from typing import Any


def test_exporter_answers_on_the_private_address(host: Any, hostvars: dict[str, Any]) -> None:
    address, port = hostvars["ansible_host"], hostvars["node_exporter_port"]
    assert "node_cpu_seconds_total" in host.check_output(f"curl -sf http://{address}:{port}/metrics")
    assert host.run(f"curl -sf -m 2 http://127.0.0.1:{port}/metrics").rc != 0  # not on every address


def test_only_the_monitoring_hosts_reach_any_exporter(host: Any, hostvars: dict[str, Any],
                                                     fleet: dict[str, Any]) -> None:
    """Every exporter port of every other host (the prometheus role's list), probed from this host."""
    from fabstack.engine.bundled import ENGINE_ROOT
    from fabstack.engine.role import load_role

    exporters = load_role(ENGINE_ROOT / "roles", "prometheus").module.EXPORTERS
    me = host.backend.get_hostname()
    monitoring = hostvars["firewall_monitoring_group"] in hostvars["group_names"]
    for other, entry in fleet.items():
        for job, port_key in exporters:
            if other == me or port_key not in entry["vars"]:
                continue
            address, port = entry["vars"]["ansible_host"], entry["vars"][port_key]
            opened = host.run(f"timeout 1 bash -c '</dev/tcp/{address}/{port}'").rc == 0
            assert opened == monitoring, (other, job, opened)
