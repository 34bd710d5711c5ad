"""php: one PHP version for every PHP role (php_fpm, php_app), and its extensions from Debian."""

from __future__ import annotations

import re
from typing import Any

from fabstack.engine.role import RoleContext

_VERSION = re.compile(r"^[0-9]+\.[0-9]+$")
_EXTENSION = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """A version Debian spells MAJOR.MINOR; extensions that are package suffixes."""
    problems = []
    if not _VERSION.match(values["php_version"]):
        problems.append(("php_version", f"must be MAJOR.MINOR as Debian names it, got {values['php_version']!r}"))
    for name in values["php_extensions"]:
        if not isinstance(name, str) or not _EXTENSION.match(name):
            problems.append(("php_extensions", f"{name!r} is not a Debian package suffix (cli, pgsql, redis)"))
    return problems


def deploy(ctx: RoleContext) -> None:
    """Declare PHP's CLI and extensions for the configured version."""
    version = ctx.vars["php_version"]
    ctx.packages(*(f"php{version}-{name}" for name in ctx.vars["php_extensions"]))
