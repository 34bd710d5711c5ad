"""testinfra checks of the php role."""

from typing import Any


def test_cli_is_the_configured_version(host: Any, hostvars: dict[str, Any]) -> None:
    out = host.check_output("php -r 'echo PHP_MAJOR_VERSION, \".\", PHP_MINOR_VERSION;'")
    assert out == hostvars["php_version"]


# Debian's package suffix -> the module PHP then lists, where the two differ
MODULES = {"mysql": "mysqli"}


def test_extensions_are_loaded(host: Any, hostvars: dict[str, Any]) -> None:
    modules = host.check_output("php -m").lower().split()
    for name in set(hostvars["php_extensions"]) - {"cli", "opcache"}:
        assert MODULES.get(name, name) in modules
