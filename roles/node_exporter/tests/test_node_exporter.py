"""testinfra checks of the node_exporter role: it answers on the private address, and only the monitoring hosts
may reach it (probed from the other hosts)."""

from typing import Any


def test_exporter_answers_on_the_private_address(host: Any, hostvars: dict[str, Any]) -> None:
    address, port = hostvars["ansible_host"], hostvars["node_exporter_port"]
    assert "node_cpu_seconds_total" in host.check_output(f"curl -sf http://{address}:{port}/metrics")
    assert host.run(f"curl -sf -m 2 http://127.0.0.1:{port}/metrics").rc != 0  # not on every address


def test_only_the_monitoring_hosts_reach_any_exporter(host: Any, hostvars: dict[str, Any],
                                                     fleet: dict[str, Any], reachable: Any) -> None:
    """Every exporter port of every other host (the prometheus role's list), probed from this host."""
    from fabstack.engine.bundled import ENGINE_ROOT
    from fabstack.engine.role import load_role

    exporters = load_role(ENGINE_ROOT / "roles", "prometheus").module.EXPORTERS
    me = host.backend.get_hostname()
    monitoring = hostvars["firewall_monitoring_group"] in hostvars["group_names"]
    targets = {(entry["vars"]["ansible_host"], entry["vars"][port_key]): (other, job)
               for other, entry in fleet.items() for job, port_key in exporters
               if other != me and port_key in entry["vars"]}
    seen = reachable(list(targets))
    assert targets
    wrong = [(*targets[target], "open" if opened else "closed") for target, opened in seen.items()
             if opened != monitoring]
    assert not wrong, wrong
