"""SSH to one host through Fabric/Paramiko: host keys refused unless known, sudo when asked, round trips counted."""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
import time
import zlib
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

from fabstack.engine.errors import FabstackError

AGENT_SOURCE = (Path(__file__).parent / "agent.py").read_bytes()
_AGENT_PAYLOAD = base64.b64encode(zlib.compress(AGENT_SOURCE, 9)).decode()
# How often a host whose sshd hangs up before its banner is tried, a second apart.
BANNER_ATTEMPTS = 3
_AGENT_DIGEST = hashlib.sha256(AGENT_SOURCE).hexdigest()[:16]
# The program run on the host: the agent compiled once per version and kept as bytecode (root's cache is
# /var/cache/fabstack, 0700), so a run costs no compile; a cache file that is not the user's own, or is writable
# by others, is never loaded. Older versions' files are removed when a new one is written.
ROOT_CACHE = "/var/cache/fabstack"


def bootstrap(root_cache: str = ROOT_CACHE) -> str:
    """The Python program (for ``python3 -c``) that runs the agent, caching its bytecode (root's in ``root_cache``)."""
    return _BOOTSTRAP_TEMPLATE.replace("ROOT_CACHE", repr(root_cache))


_BOOTSTRAP_TEMPLATE = f"""
import os, sys, marshal
folder = ROOT_CACHE if os.geteuid() == 0 else os.path.expanduser('~/.cache/fabstack')
name = 'agent-{_AGENT_DIGEST}.' + sys.implementation.cache_tag
path = os.path.join(folder, name)
def owned(p):
    st = os.lstat(p)
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022
try:
    if not (owned(folder) and owned(path)):
        raise OSError
    with open(path, 'rb') as handle:
        code = marshal.load(handle)
except (OSError, ValueError, EOFError, TypeError):
    import base64, zlib
    code = compile(zlib.decompress(base64.b64decode('{_AGENT_PAYLOAD}')), 'fabstack-agent', 'exec')
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        for old in os.listdir(folder):
            if old.startswith('agent-') and old != name:
                os.unlink(os.path.join(folder, old))
        tmp = path + '.' + str(os.getpid())
        with open(tmp, 'wb') as handle:
            marshal.dump(code, handle)
        os.replace(tmp, path)
    except OSError:
        pass
exec(code)
"""
_BOOTSTRAP = bootstrap()


class HostConnection:
    """One SSH session to a host, speaking the agent's JSON protocol; counts every remote command it runs."""

    def __init__(
        self,
        name: str,
        hostvars: dict[str, Any],
        root: Path,
        known_hosts: list[Path],
        connect_timeout: float = 10,
    ) -> None:
        self.name = name
        self.address = str(hostvars.get("ansible_host", name))
        self.port = int(hostvars.get("ansible_port", 22))
        self.user = hostvars.get("ansible_user")
        self.become = bool(hostvars.get("ansible_become", False)) and self.user not in (None, "root")
        self.python = str(hostvars.get("ansible_python_interpreter", "python3"))
        key_file = hostvars.get("ansible_ssh_private_key_file")
        connect_kwargs: dict[str, Any] = {"banner_timeout": connect_timeout}
        if key_file:
            connect_kwargs["key_filename"] = [str((root / Path(str(key_file)).expanduser()).resolve())]
        self.fabric = Connection(
            host=self.address,
            port=self.port,
            user=self.user,
            connect_kwargs=connect_kwargs,
            connect_timeout=connect_timeout,
            config=Config(),
        )
        # Fabric's default AutoAddPolicy would trust any key: only keys we hold are accepted.
        self.fabric.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        for path in known_hosts:
            if path.is_file():
                self.fabric.client.load_host_keys(str(path))
        self.round_trips = 0

    def open(self) -> None:
        """Connect and authenticate, turning SSH failures into one-line errors naming the host."""
        try:
            self._open_or_close()
        except paramiko.BadHostKeyException as exc:
            raise FabstackError(
                f"host key CHANGED for {self.address} (expected {exc.expected_key.get_name()}): refusing to connect",
                host=self.name,
            ) from exc
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text:
                text = f"unknown host key for {self.address}: record it first (inv hosts.trust or inv sandbox.up)"
            raise FabstackError(f"ssh: {text}", host=self.name) from exc
        except (TimeoutError, OSError) as exc:
            raise FabstackError(f"unreachable at {self.address}:{self.port}: {exc}", host=self.name) from exc

    def _open_or_close(self) -> None:
        """Open the session; on any failure close what was opened (paramiko keeps a refused transport running).

        A peer that hangs up before its banner (sshd shedding load under MaxStartups, or restarting) is asked again
        after a pause, up to ``BANNER_ATTEMPTS`` times; a host that does not answer at all fails at once, so a
        dead host costs no extra time.
        """
        for attempt in range(1, BANNER_ATTEMPTS + 1):
            try:
                self.fabric.open()
                return
            except paramiko.SSHException as exc:
                self.fabric.client.close()
                if attempt == BANNER_ATTEMPTS or "protocol banner" not in str(exc):
                    raise
                time.sleep(1)
            except BaseException:
                self.fabric.client.close()
                raise

    def close(self) -> None:
        """Close the SSH session."""
        self.fabric.close()

    @property
    def connected(self) -> bool:
        """Whether the SSH session is open now (a request on a closed one opens it again)."""
        return bool(self.fabric.is_connected)

    def command_prefix(self) -> str:
        """``sudo -n`` when the inventory asks to become root as a non-root user."""
        return "sudo -n -H -- " if self.become else ""

    def exec(self, command: str, stdin: bytes = b"", timeout: float = 1800) -> tuple[int, bytes, bytes]:
        """Run one command on the host (one round trip), feeding ``stdin``; return (status, stdout, stderr)."""
        if not self.fabric.is_connected:
            self.open()
        self.round_trips += 1
        transport = self.fabric.client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=30)
        channel.settimeout(timeout)
        # from /, not the login user's home: a command run as another user (runuser, sudo -u) cannot enter a home
        # kept 0750, and would say so in its output
        channel.exec_command(f"cd / && {command}")
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        out = bytearray()
        err = bytearray()
        while True:
            chunk = channel.recv(65536)
            if not chunk:
                break
            out += chunk
        while channel.recv_stderr_ready() or not channel.exit_status_ready():
            chunk = channel.recv_stderr(65536)
            if not chunk and channel.exit_status_ready():
                break
            err += chunk
        status = channel.recv_exit_status()
        channel.close()
        return status, bytes(out), bytes(err)

    def agent(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request to the remote agent (one round trip) and return its JSON answer."""
        command = f"{self.command_prefix()}{shlex.quote(self.python)} -c {shlex.quote(_BOOTSTRAP)}"
        status, out, err = self.exec(command, json.dumps(request).encode())
        if status != 0:
            lines = err.decode(errors="replace").strip().splitlines()
            raise FabstackError(
                f"remote {request['action']} failed (exit {status}): {lines[-1] if lines else 'no output'}",
                host=self.name,
            )
        try:
            return json.loads(out)
        except json.JSONDecodeError as exc:
            raise FabstackError(f"remote {request['action']} answered garbage: {out[:200]!r}", host=self.name) from exc
