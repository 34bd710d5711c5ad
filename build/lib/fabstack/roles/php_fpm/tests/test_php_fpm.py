"""testinfra checks of the php_fpm role."""

from typing import Any


def test_running_enabled_and_valid(host: Any, hostvars: dict[str, Any]) -> None:
    service = host.service(hostvars["php_fpm_service"])
    assert service.is_running and service.is_enabled
    assert host.run(f"{hostvars['php_fpm_binary']} -t").rc == 0


def test_pool_holds_computed_children(host: Any, hostvars: dict[str, Any], computed: dict[str, Any]) -> None:
    pool = host.file(f"{hostvars['php_etc']}/fpm/pool.d/app.conf").content_string
    assert f"pm.max_children = {computed['php_fpm_max_children']}" in pool
    assert f"pm.max_requests = {hostvars['php_fpm_max_requests']}" in pool
    assert not host.file(f"{hostvars['php_etc']}/fpm/pool.d/www.conf").exists
    assert f"process_control_timeout = {hostvars['php_fpm_process_control_timeout']}s" in \
        host.file(f"{hostvars['php_etc']}/fpm/php-fpm.conf").content_string


def test_opcache_settings_are_live(host: Any, hostvars: dict[str, Any]) -> None:
    ini = host.file(f"{hostvars['php_etc']}/fpm/conf.d/90-fabstack.ini").content_string
    assert f"opcache.memory_consumption = {hostvars['php_opcache_memory_mb']}" in ini
    assert "opcache.validate_timestamps = 0" in ini
    assert host.socket(f"unix://{hostvars['php_fpm_socket']}").is_listening


def test_no_tcp_listener(host: Any) -> None:
    assert not host.socket("tcp://0.0.0.0:9000").is_listening
