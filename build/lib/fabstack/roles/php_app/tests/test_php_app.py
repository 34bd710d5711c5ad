"""testinfra checks of the php_app role."""

from typing import Any


def test_release_is_current_and_config_is_private(host: Any, hostvars: dict[str, Any]) -> None:
    current = host.file(f"{hostvars['php_app_dest']}/current")
    assert current.is_symlink and "/releases/" in current.linked_to
    assert host.file(f"{hostvars['php_app_dest']}/current/public/index.php").exists
    config = host.file("/etc/fabstack/php-app.php")
    assert config.mode == 0o640 and config.group == "www-data"
