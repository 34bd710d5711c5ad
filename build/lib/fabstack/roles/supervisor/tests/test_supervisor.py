"""testinfra checks of the supervisor role."""

from typing import Any


def test_running_and_every_program_up(host: Any, hostvars: dict[str, Any]) -> None:
    service = host.service("supervisor")
    assert service.is_running and service.is_enabled
    status = host.check_output("supervisorctl status")
    for program in hostvars["supervisor_programs"]:
        lines = [x for x in status.splitlines() if x.startswith(f"{program['name']}:")]
        assert len(lines) == program.get("numprocs", 1), status
        assert all("RUNNING" in x for x in lines), status
