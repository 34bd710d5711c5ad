"""testinfra checks of the fastapi_app role."""

from typing import Any


def test_release_is_current_and_settings_are_private(host: Any, hostvars: dict[str, Any]) -> None:
    current = host.file(f"{hostvars['fastapi_app_dest']}/current")
    assert current.is_symlink and host.file(f"{hostvars['fastapi_app_dest']}/current/main.py").exists
    settings = host.file("/etc/fabstack/fastapi-app.env")
    assert settings.mode == 0o640 and settings.group == "www-data"
