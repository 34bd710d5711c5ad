"""hardening: unattended security updates, fail2ban for SSH, the CIS/lynis kernel settings, login.defs, core dumps
off, blacklisted modules, root-only compilers, strict cron and home folders, a legal banner and an audit trail."""

from __future__ import annotations

import re
from typing import Any

from fabstack.engine.role import RoleContext

# Roles whose settings this role reads when the host runs them too (the firewall asks for inbound ports).
READS = ("firewall",)

HANDLERS = {
    "restart fail2ban": "fail2ban-client -t >/dev/null && systemctl restart fail2ban",
}

_MODULE = re.compile(r"^[A-Za-z0-9_-]+$")
_SYSCTL = re.compile(r"^[a-z0-9_.-]+$")


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Values that are well-typed but cannot work."""
    problems = []
    if not re.fullmatch(r"0?[0-7]{3}", values["hardening_umask"]):
        problems.append(("hardening_umask", f"must be an octal umask such as 027, got {values['hardening_umask']!r}"))
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", values["hardening_reboot_time"]):
        problems.append(("hardening_reboot_time", "must be HH:MM"))
    for key in ("hardening_fail2ban_maxretry", "hardening_fail2ban_findtime", "hardening_fail2ban_bantime",
                "hardening_pass_max_days", "hardening_pass_min_days", "hardening_pass_warn_age"):
        if not 1 <= values[key] <= 10_000_000:
            problems.append((key, f"must be between 1 and 10000000, got {values[key]}"))
    if not 1000 <= values["hardening_sha_crypt_rounds"] <= 10_000_000:
        problems.append(("hardening_sha_crypt_rounds", "must be between 1000 and 10000000"))
    bad = [m for m in values["hardening_blacklisted_modules"] if not _MODULE.match(str(m))]
    if bad:
        problems.append(("hardening_blacklisted_modules", f"not module names: {bad!r}"))
    bad = [k for k, v in values["hardening_sysctls"].items() if not _SYSCTL.match(str(k)) or isinstance(v, dict | list)]
    if bad:
        problems.append(("hardening_sysctls", f"keys must be sysctl names with plain values: {bad!r}"))
    bad = [p for p in values["hardening_compilers"] if not str(p).startswith("/") or any(c.isspace() for c in p)]
    if bad:
        problems.append(("hardening_compilers", f"must be absolute paths: {bad!r}"))
    if any(c in values["hardening_banner"] for c in "\\\x00"):
        problems.append(("hardening_banner", "must not hold backslashes (getty expands them in /etc/issue)"))
    return problems


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
