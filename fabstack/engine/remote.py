"""Running day-2 commands on hosts over fabstack's SSH path (sudo as the inventory says), one call each."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from fabstack.engine import operations as ops
from fabstack.engine.connection import HostConnection
from fabstack.engine.errors import FabstackError, telling_line
from fabstack.engine.project import HostSetup, Project
from fabstack.engine.runner import connect


@dataclass
class RemoteHost:
    """A host reached for day-2 work; ``conn`` is None when it did not answer."""

    setup: HostSetup
    conn: HostConnection | None
    error: str = ""

    @property
    def name(self) -> str:
        """The inventory name."""
        return self.setup.name

    @property
    def reachable(self) -> bool:
        """Whether SSH answered."""
        return self.conn is not None

    def run(self, command: str, *, stdin: str = "", check: bool = True, timeout: float = 600) -> str:
        """Run a shell command as root; return its output (stdout then stderr). Raise on failure if ``check``."""
        if self.conn is None:
            raise FabstackError(f"not reachable: {self.error}", host=self.name)
        status, out, err = self.conn.exec(f"{self.conn.command_prefix()}sh -c {shlex.quote(command)}",
                                          stdin.encode(), timeout=timeout)
        text = (out + err).decode(errors="replace").strip()
        if check and status != 0:
            raise FabstackError(f"`{command.split()[0]} ...` failed: {telling_line(text) if text else status}",
                                host=self.name)
        return text

    def wait_until_booted(self, seconds: int = 120) -> None:
        """Wait (bounded) until a host that just booted has finished starting its units, so a stop or a restart
        does not cut into a start still under way; a host still starting after ``seconds`` is left to the caller."""
        self.run(f"timeout {int(seconds)} systemctl is-system-running --wait", check=False, timeout=seconds + 30)

    def service(self, name: str, state: str, *, masked: bool = False) -> bool:
        """Bring a systemd unit to ``state`` (``started`` or ``stopped``; ``masked`` too) through the agent's
        service operation, as a deploy would; return whether anything changed. Raise when it fails."""
        if self.conn is None:
            raise FabstackError(f"not reachable: {self.error}", host=self.name)
        step = ops.Service(name, state=state, enabled=None, masked=masked).desired()
        [result] = self.conn.agent({"action": "apply", "roles": [{"name": "day-2", "steps": [step], "handlers": []}]}
                                   )["results"]
        if result["status"] == "failed":
            raise FabstackError(f"service {name}: {result.get('message', 'failed')}", host=self.name)
        return bool(result["status"] == "changed")

    def close(self) -> None:
        """Close the SSH session."""
        if self.conn is not None:
            self.conn.close()


def reach(project: Project, host: str, timeout: float = 3) -> RemoteHost:
    """Connect to a host (giving up after ``timeout`` seconds), or return it marked unreachable with the reason."""
    setup = project.setup(host, None)
    conn = connect(project, setup, timeout)
    try:
        conn.open()
    except FabstackError as exc:
        return RemoteHost(setup, None, exc.message)
    return RemoteHost(setup, conn)
