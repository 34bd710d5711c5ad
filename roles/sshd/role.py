"""sshd: no passwords, root by key only, ssh-audit's algorithms; `sshd -t` before the reload, and a reload that
leaves sshd not answering is undone."""

from __future__ import annotations

import re
from typing import Any

from fabstack.engine.role import RoleContext

# After a reload, a fresh connection must get sshd's banner; if it does not, the previous drop-in comes back (the
# engine's own session is still open: sshd keeps established connections across a reload).
HANDLERS = {
    "reload ssh": "sshd -t && systemctl reload ssh && python3 -c \"import socket, time\n"
                  "for _ in range(50):\n"
                  "    try:\n"
                  "        s = socket.create_connection(('127.0.0.1', 22), 5)\n"
                  "        assert s.recv(64).startswith(b'SSH-2.0'); break\n"
                  "    except (OSError, AssertionError): time.sleep(0.1)\n"
                  "else: raise SystemExit('sshd does not answer a fresh connection after the reload')\"",
}

# sshd takes the first value it reads and includes sshd_config.d/*.conf in name order at the top of sshd_config:
# "00-" sorts before every drop-in Debian or cloud-init writes (50-cloud-init.conf sets PasswordAuthentication).
DROP_IN = "/etc/ssh/sshd_config.d/00-fabstack.conf"
# The name earlier versions used, removed.
OLD_DROP_IN = "/etc/ssh/sshd_config.d/60-fabstack.conf"
# Host key type -> the signature algorithms offered for it (RSA with SHA-2 only).
HOST_KEY_ALGORITHMS = {"ed25519": ["ssh-ed25519"], "rsa": ["rsa-sha2-512", "rsa-sha2-256"]}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Only key-based root logins (or none); host keys that ssh-audit accepts; every list non-empty."""
    problems = []
    if values["sshd_permit_root_login"] not in ("prohibit-password", "no"):
        problems.append(("sshd_permit_root_login", "must be prohibit-password or no: passwords are never accepted"))
    types = values["sshd_host_key_types"]
    if not types or any(t not in HOST_KEY_ALGORITHMS for t in types):
        problems.append(("sshd_host_key_types", f"must be ed25519 and/or rsa, got {types!r}"))
    for key in ("sshd_ciphers", "sshd_macs", "sshd_kex_algorithms"):
        if not values[key] or any(not isinstance(v, str) or not v.replace("@", "").replace(".", "").replace(
                "-", "").isalnum() for v in values[key]):
            problems.append((key, "must be a non-empty list of algorithm names"))
    if any(not str(mac).endswith("-etm@openssh.com") for mac in values["sshd_macs"]):
        problems.append(("sshd_macs", "only encrypt-then-MAC (-etm@openssh.com) MACs are accepted"))
    for key in ("sshd_max_sessions", "sshd_per_source_max_startups", "sshd_login_grace_time", "sshd_max_auth_tries"):
        if not 1 <= values[key] <= 1000:
            problems.append((key, f"must be between 1 and 1000, got {values[key]}"))
    if any(c in values["sshd_banner"] for c in "\n \t#"):
        problems.append(("sshd_banner", "a file path without spaces, newlines or #"))
    if not re.fullmatch(r"\d+(:\d+:\d+)?", values["sshd_max_startups"]):
        problems.append(("sshd_max_startups", f"must be N or start:rate:full, got {values['sshd_max_startups']!r}"))
    return problems


def deploy(ctx: RoleContext) -> None:
    """Declare the hardening drop-in (it comes first in sshd_config's Include, so its values win)."""
    v = ctx.vars
    ctx.packages("openssh-server")
    ctx.template("hardening.conf.j2", DROP_IN, mode="0600", validate="sshd -t", notify="reload ssh",
                 host_keys=v["sshd_host_key_types"],
                 host_key_algorithms=[a for t in v["sshd_host_key_types"] for a in HOST_KEY_ALGORITHMS[t]])
    ctx.absent(OLD_DROP_IN, notify="reload ssh")
    ctx.permissions("/etc/ssh/sshd_config", "0600")
    ctx.service("ssh")
