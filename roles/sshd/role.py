"""sshd: no passwords, root by key only, ssh-audit's algorithms; `sshd -t` before the reload, and a reload that
leaves sshd not answering is undone."""

from __future__ import annotations

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import Setting, positive

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


_ALGORITHM = Setting(pattern=r"[A-Za-z0-9@.-]+", shape="an algorithm name")
SETTINGS = {
    # passwords are never accepted
    "sshd_permit_root_login": Setting(choices=("prohibit-password", "no")),
    "sshd_host_key_types": Setting(nonempty=True, item=Setting(choices=tuple(HOST_KEY_ALGORITHMS))),
    "sshd_ciphers": Setting(nonempty=True, item=_ALGORITHM),
    "sshd_kex_algorithms": Setting(nonempty=True, item=_ALGORITHM),
    # only encrypt-then-MAC
    "sshd_macs": Setting(nonempty=True, item=Setting(pattern=r"[A-Za-z0-9@.-]+-etm@openssh\.com",
                                                     shape="an encrypt-then-MAC name (-etm@openssh.com)")),
    **{key: positive(1000) for key in ("sshd_max_sessions", "sshd_per_source_max_startups", "sshd_login_grace_time",
                                       "sshd_max_auth_tries")},
    "sshd_banner": Setting(pattern=r"[^\s#]*", shape="a file path without spaces or #"),
    "sshd_max_startups": Setting(pattern=r"[0-9]+(:[0-9]+:[0-9]+)?", shape="N or start:rate:full"),
}


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
