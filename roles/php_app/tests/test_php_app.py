"""testinfra checks of the php_app role."""

from typing import Any


def test_release_is_current_and_env_is_private(host: Any, hostvars: dict[str, Any]) -> None:
    current = host.file(f"{hostvars['php_app_dest']}/current")
    assert current.is_symlink and current.linked_to.startswith(f"{hostvars['php_app_dest']}/releases/")
    assert host.file(f"{hostvars['php_app_dest']}/current/public/index.php").exists
    env = host.file(f"{hostvars['php_app_dest']}/shared/.env")
    assert env.mode == 0o640 and env.group == "www-data"
    assert host.file(f"{hostvars['php_app_dest']}/current/.env").linked_to == env.path
