"""testinfra checks of the php_fpm_exporter role: the pool's status page is read over its socket, and the pool's
max_children is the one the budget computed."""

from typing import Any


def test_the_pool_status_is_reported(host: Any, hostvars: dict[str, Any], computed: dict[str, Any]) -> None:
    page = host.check_output(f"curl -sf http://{hostvars['ansible_host']}:{hostvars['php_fpm_exporter_port']}"
                             "/metrics")
    assert "phpfpm_up 1" in page.splitlines()
    assert 'phpfpm_listen_queue{pool="app"} ' in page
    assert f'phpfpm_max_children{{pool="app"}} {computed["php_fpm_max_children"]}' in page


def test_it_runs_as_its_own_account(host: Any) -> None:
    pid = host.check_output("systemctl show --property=MainPID --value fabstack-php-fpm-exporter")
    assert host.check_output(f"ps -o user= -p {pid}").strip() == "fabstack-exporter"
