"""testinfra checks of the express_app role."""

from typing import Any


def test_settings_are_private_and_node_is_installed(host: Any) -> None:
    settings = host.file("/etc/fabstack/express.env")
    assert settings.mode == 0o640 and settings.group == "www-data"
    assert host.package("nodejs").is_installed
