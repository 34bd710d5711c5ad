"""testinfra checks of the uvicorn role."""

from typing import Any


def test_service_running_with_computed_workers(host: Any, hostvars: dict[str, Any], computed: dict[str, Any]) -> None:
    service = host.service("fabstack-fastapi")
    assert service.is_running and service.is_enabled
    unit = next(line for line in host.file("/etc/systemd/system/fabstack-fastapi.service").content_string
                .splitlines() if line.startswith("ExecStart="))
    assert f"--workers {computed['uvicorn_workers']}" in unit
    keepalive = int(unit.split("--keep-alive ")[1].split()[0])
    assert keepalive > hostvars["uvicorn_upstream_idle_seconds"]
    assert f"--worker-connections {hostvars['uvicorn_limit_concurrency']}" in unit
    assert f"--backlog {hostvars['uvicorn_backlog']}" in unit
    arbiter = host.check_output("systemctl show -p MainPID --value fabstack-fastapi")
    workers = host.check_output(f"pgrep -P {arbiter} || true").split()
    assert len(workers) == computed["uvicorn_workers"]


def test_listens_on_loopback_only(host: Any, hostvars: dict[str, Any]) -> None:
    port = hostvars["uvicorn_port"]
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert '"ok":true' in host.check_output(f"curl -sf http://127.0.0.1:{port}/health")
