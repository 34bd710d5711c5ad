"""common: base packages, timezone, the stack's kernel settings and open-file limits."""

from __future__ import annotations

from fabstack.engine.role import HOST_LIB, RoleContext
from fabstack.engine.settingspec import Setting, positive
from fabstack.stack.tuning import capped_nofile

HANDLERS = {
    "reexec systemd": "systemctl daemon-reexec",
}


SETTINGS = {
    "common_somaxconn": positive(), "common_file_max": positive(), "common_nofile_limit": positive(),
    "common_overcommit_memory": Setting(choices=(0, 1, 2)),
}


def deploy(ctx: RoleContext) -> None:
    """Declare the base state of every host."""
    v = ctx.vars
    ctx.packages(*v["common_packages"])
    ctx.file("/etc/timezone", f"{v['common_timezone']}\n")
    ctx.symlink("/etc/localtime", f"/usr/share/zoneinfo/{v['common_timezone']}")

    ctx.sysctl("net.core.somaxconn", v["common_somaxconn"])
    ctx.sysctl("fs.file-max", v["common_file_max"])
    ctx.sysctl("vm.overcommit_memory", v["common_overcommit_memory"])

    nofile = capped_nofile(v["common_nofile_limit"], ctx.facts["nofile_hard"])
    ctx.template("limits.conf.j2", "/etc/security/limits.d/60-fabstack.conf", nofile=nofile)
    ctx.directory("/etc/systemd/system.conf.d")
    # the HTTP side of fabstack's own exporters (those of the roles that have one import it from here)
    ctx.directory(HOST_LIB)
    ctx.file(f"{HOST_LIB}/metrics_server.py", (ctx.role.path / "files" / "metrics_server.py").read_bytes())
    ctx.template("systemd-limits.conf.j2", "/etc/systemd/system.conf.d/60-fabstack-limits.conf", nofile=nofile,
                  notify="reexec systemd")
