"""What the monitoring roles declare, from the project alone: Prometheus's targets follow the inventory, every
exporter is open to the monitoring hosts alone, and settings Prometheus could not read are refused in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from fabstack.engine.errors import FabstackError
from tests.conftest import REPO, copy_project
from tests.test_roles_declare import ops_by_host


def declared(root: Path = REPO, *overrides: str) -> dict[str, dict[str, object]]:
    """Each sandbox host's operations by id, planned from offline facts."""
    return ops_by_host(root, overrides)


def targets(ops: dict[str, object]) -> dict[str, list[str]]:
    """Prometheus's scrape jobs and their target addresses, from the declared prometheus.yml."""
    config = yaml.safe_load(ops["file /etc/prometheus/prometheus.yml"].content)
    return {job["job_name"]: [target for static in job["static_configs"] for target in static["targets"]]
            for job in config["scrape_configs"]}


def test_every_host_is_a_node_target_and_each_exporter_where_its_role_is() -> None:
    jobs = targets(declared()["mon1"])
    assert sorted(jobs["node"]) == sorted(f"10.213.0.{n}:9100" for n in (11, 21, 22, 31, 32, 41, 51))
    assert jobs["nginx"] == ["10.213.0.11:9113"] and jobs["nginx_log"] == ["10.213.0.11:3903"]
    assert jobs["redis"] == ["10.213.0.41:9121"]


def test_a_host_added_to_the_inventory_becomes_a_target(tmp_path: Path) -> None:
    root = copy_project(tmp_path / "repo", with_state=True)
    inventory = root / "inventory" / "sandbox.yml"
    inventory.write_text(inventory.read_text().replace(
        "        app2: {ansible_host: 10.213.0.22, sandbox_memory: 3g}",
        "        app2: {ansible_host: 10.213.0.22, sandbox_memory: 3g}\n"
        "        app3: {ansible_host: 10.213.0.23, sandbox_memory: 3g}", 1))
    assert "10.213.0.23:9100" in targets(declared(root)["mon1"])["node"]


def test_exporters_are_open_to_the_monitoring_host_alone() -> None:
    for host, ops in declared().items():
        rules = ops["file /etc/nftables.conf"].content.decode()
        for port in ("9100", "9113", "3903", "9121"):
            for line in (line for line in rules.splitlines() if re.search(rf"dport {{ {port}\b", line)):
                assert "ip saddr { 10.213.0.51/32, 10.213.0.1/32 }" in line, (host, line)


@pytest.mark.parametrize("setting,message", [
    ("alert_target_down_for=soon", "must be a duration"),
    ("alertmanager_webhook_url=ftp://x", "http\\(s\\) URL"),
    ("alert_memory_available_percent=0", "from 1 to at most 90"),
    ('redis_exporter_queue_keys=["a b"]', "a key of letters"),
])
def test_settings_prometheus_could_not_read_are_refused(setting: str, message: str) -> None:
    with pytest.raises(FabstackError, match=message) as refused:
        declared(REPO, setting)
    assert refused.value.key == setting.split("=")[0] and refused.value.host
