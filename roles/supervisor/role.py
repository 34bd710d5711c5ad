"""supervisor: queue worker programs from group_vars, restarted when their definition changes."""

from __future__ import annotations

import re
from typing import Any

from fabstack.engine.role import RoleContext
from fabstack.engine.rolecontract import Commitment

HANDLERS = {
    "update supervisor": "supervisorctl reread >/dev/null && supervisorctl update",
}

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


MAX_PROCS = 1000
_KEYS = {"name", "command", "numprocs", "directory", "priority", "user"}
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_DIR = re.compile(r"^/[A-Za-z0-9._/+@-]*$")


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_PROCS


def check(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Each program needs a plain name, a one-line command and a positive numprocs."""
    problems = []
    for program in values["supervisor_programs"]:
        if not isinstance(program, dict) or not _NAME.match(str(program.get("name", ""))):
            problems.append(("supervisor_programs", f"each program needs a name of letters, digits, - or _: "
                                                    f"{program!r}"))
        elif not isinstance(program.get("command"), str) or "\n" in program["command"]:
            problems.append(("supervisor_programs", f"program {program['name']} needs a one-line command"))
        elif set(program) - _KEYS:
            unknown = sorted(set(program) - _KEYS)[0]
            problems.append(("supervisor_programs", f"program {program['name']}: unknown key {unknown!r} "
                                                    f"(known: {', '.join(sorted(_KEYS))})"))
        elif not (_USER.match(str(program.get("user", "www-data")))
                  and _DIR.match(str(program.get("directory", "/")))):
            problems.append(("supervisor_programs", f"program {program['name']} needs a plain user name and an "
                                                    "absolute directory"))
        elif not isinstance(program.get("priority", 999), int) or isinstance(program.get("priority"), bool):
            problems.append(("supervisor_programs", f"program {program['name']} needs a whole-number priority"))
        elif not _count(program.get("numprocs", 1)):
            problems.append(("supervisor_programs", f"program {program['name']} needs numprocs, a whole number "
                                                    f"from 1 to {MAX_PROCS}, got {program.get('numprocs')!r}"[:300]))
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
