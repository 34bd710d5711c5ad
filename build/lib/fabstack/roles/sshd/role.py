"""sshd: no passwords, root by key only, modern algorithms; validated with `sshd -t` before the reload."""

from __future__ import annotations

from typing import Any

from fabstack.role import RoleContext

HANDLERS = {
    "reload ssh": "systemctl reload ssh",
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Only key-based root logins (or none) are allowed."""
    if values["sshd_permit_root_login"] not in ("prohibit-password", "no"):
        return [("sshd_permit_root_login", "must be prohibit-password or no: passwords are never accepted")]
    return []


def deploy(ctx: RoleContext) -> None:
    """Declare the hardening drop-in (it comes first in sshd_config's Include, so its values win)."""
    ctx.packages("openssh-server")
    ctx.template("hardening.conf.j2", "/etc/ssh/sshd_config.d/60-fabstack.conf", validate="sshd -t",
                  notify="reload ssh")
    ctx.service("ssh")
