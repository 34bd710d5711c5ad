"""hardening: unattended security updates, fail2ban for SSH, the CIS/lynis kernel settings, login.defs, core dumps
off, blacklisted modules, root-only compilers, strict cron and home folders, a legal banner and an audit trail."""

from __future__ import annotations

import re
from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.settingspec import Setting, positive

# Roles whose settings this role reads when the host runs them too (the firewall asks for inbound ports).
READS = ("firewall",)

HANDLERS = {
    "restart fail2ban": "fail2ban-client -t >/dev/null && systemctl restart fail2ban",
}

_SYSCTL = re.compile(r"^[a-z0-9_.-]+$")


SETTINGS = {
    "hardening_umask": Setting(pattern=r"0?[0-7]{3}", shape="an octal umask such as 027"),
    "hardening_reboot_time": Setting(pattern=r"([01][0-9]|2[0-3]):[0-5][0-9]", shape="HH:MM"),
    **{key: positive(10_000_000) for key in (
        "hardening_fail2ban_maxretry", "hardening_fail2ban_findtime", "hardening_fail2ban_bantime",
        "hardening_pass_max_days", "hardening_pass_min_days", "hardening_pass_warn_age")},
    "hardening_sha_crypt_rounds": Setting(least=1000, most=10_000_000),
    "hardening_blacklisted_modules": Setting(item=Setting(pattern=r"[A-Za-z0-9_-]+", shape="a module name")),
    "hardening_compilers": Setting(item=Setting(pattern=r"/\S*", shape="an absolute path")),
    # getty expands backslashes in /etc/issue
    "hardening_banner": Setting(pattern=r"[^\\]*", shape="text without backslashes"),
}


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Sysctls by name, with plain values."""
    bad = [k for k, v in values["hardening_sysctls"].items() if not _SYSCTL.match(str(k)) or isinstance(v, dict | list)]
    return [("hardening_sysctls", f"keys must be sysctl names with plain values: {bad!r}")] if bad else []


def never_banned(ctx: RoleContext) -> list[str]:
    """The admin sources and every host of the fleet: fail2ban never bans them."""
    fleet = [f"{ctx.address_of(h)}/32" for h in ctx.hostvars]
    return list(dict.fromkeys([*ctx.vars.get("firewall_admin_sources", []), *fleet]))


def deploy(ctx: RoleContext) -> None:
    """Declare the host-wide hardening."""
    v = ctx.vars
    in_container = bool(ctx.facts.get("container"))
    ctx.packages("unattended-upgrades", "fail2ban", "python3-systemd", *v["hardening_packages"])

    ctx.template("auto-upgrades.conf.j2", "/etc/apt/apt.conf.d/20auto-upgrades")
    ctx.template("unattended-upgrades.conf.j2", "/etc/apt/apt.conf.d/52fabstack-unattended-upgrades")

    ctx.template("jail.local.j2", "/etc/fail2ban/jail.local", notify="restart fail2ban",
                 never_banned=never_banned(ctx))
    ctx.service("fail2ban")

    for key, value in v["hardening_sysctls"].items():
        ctx.sysctl(key, value)

    ctx.template("login.defs.j2", "/etc/login.defs")
    ctx.file("/etc/security/limits.d/60-fabstack-core.conf", f"# {ctx.vars_managed()}\n* hard core 0\n")
    ctx.directory("/etc/modprobe.d")
    ctx.file("/etc/modprobe.d/fabstack-hardening.conf", f"# {ctx.vars_managed()}\n" + "".join(
        f"install {m} /bin/true\nblacklist {m}\n" for m in v["hardening_blacklisted_modules"]))
    if v["hardening_banner"]:
        banner = " ".join(v["hardening_banner"].split()) + "\n"
        ctx.file("/etc/issue", banner)
        ctx.file("/etc/issue.net", banner)

    for path in v["hardening_compilers"]:
        ctx.permissions(path, "0750")
    for folder in ("/etc/cron.d", "/etc/cron.daily", "/etc/cron.hourly", "/etc/cron.weekly", "/etc/cron.monthly"):
        ctx.permissions(folder, "0700")
    ctx.permissions("/etc/crontab", "0600")
    ctx.command("find /home -mindepth 1 -maxdepth 1 -type d -perm /027 -exec chmod g-w,o-rwx {} +",
                unless="test -z \"$(find /home -mindepth 1 -maxdepth 1 -type d -perm /027)\"",
                name="home folders 0750 or stricter")

    ctx.template("sysstat.j2", "/etc/default/sysstat")
    ctx.service("sysstat")
    if not in_container:  # the kernel's audit and accounting interfaces are the host's, not a container's
        ctx.packages("auditd", "acct")
        ctx.service("auditd")
        ctx.service("acct")
