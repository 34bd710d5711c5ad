"""php: one PHP version for every PHP role (php_fpm, php_app), and its extensions from Debian."""

from __future__ import annotations

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import Setting

SETTINGS = {
    "php_version": Setting(pattern=r"[0-9]+\.[0-9]+", shape="MAJOR.MINOR as Debian names it"),
    "php_extensions": Setting(item=Setting(pattern=r"[a-z0-9][a-z0-9.+-]*",
                                           shape="a Debian package suffix (cli, pgsql, redis)")),
}


def deploy(ctx: RoleContext) -> None:
    """Declare PHP's CLI and extensions for the configured version."""
    version = ctx.vars["php_version"]
    ctx.packages(*(f"php{version}-{name}" for name in ctx.vars["php_extensions"]))
