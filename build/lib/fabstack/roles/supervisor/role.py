"""supervisor: queue worker programs from group_vars, restarted when their definition changes."""

from __future__ import annotations

import re
from typing import Any

from fabstack.role import RoleContext
from fabstack.rolecontract import Commitment

HANDLERS = {
    "update supervisor": "supervisorctl reread >/dev/null && supervisorctl update",
}

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Each program needs a plain name, a one-line command and a positive numprocs."""
    problems = []
    for program in values["supervisor_programs"]:
        if not isinstance(program, dict) or not _NAME.match(str(program.get("name", ""))):
            problems.append(("supervisor_programs", f"each program needs a name of letters, digits, - or _: "
                                                    f"{program!r}"))
        elif not isinstance(program.get("command"), str) or "\n" in program["command"]:
            problems.append(("supervisor_programs", f"program {program['name']} needs a one-line command"))
        elif int(program.get("numprocs", 1)) <= 0:
            problems.append(("supervisor_programs", f"program {program['name']} needs numprocs of at least 1"))
    return problems


def commitment(values: dict[str, Any], facts: dict[str, Any] | None) -> Commitment | None:
    """Queue worker processes, one database connection each."""
    if facts is None:
        return None
    procs = sum(int(p.get("numprocs", 1)) for p in values["supervisor_programs"])
    return Commitment(memory=[("queue workers", procs * values["supervisor_worker_mb"])], db_clients=procs,
                      memory_key="supervisor_programs",
                      summary=f"workers   {procs} queue worker processes x 1 = {procs}")


def deploy(ctx: RoleContext) -> None:
    """Declare Supervisor and one config file holding every program."""
    ctx.packages("supervisor")
    ctx.template("programs.conf.j2", "/etc/supervisor/conf.d/fabstack.conf", notify="update supervisor")
    ctx.service("supervisor")
