"""An OpenSSH client config for an env's hosts (for testinfra and plain ssh), with connection sharing."""

from __future__ import annotations

from pathlib import Path

from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.inventory import known_hosts_path
from fabstack.engine.project import Project


def _quoted(path: object) -> str:
    """A path as one ssh_config argument: in double quotes, which a path can never break out of."""
    text = str(path)
    if '"' in text or any(ord(c) < 32 for c in text):
        raise FabstackError(f"cannot be written into an ssh config: {shorten(repr(text))}", key="ssh config")
    return f'"{text}"'


def write_ssh_config(project: Project, hosts: list[str]) -> Path:
    """Write ``.fabstack/ssh/ENV.config``: one Host block per inventory host, strict host keys, ControlMaster.
    Every value was checked with the deploy's input checks (checks.check_connection) before this is called."""
    folder = project.root / ".fabstack" / "ssh"
    folder.mkdir(parents=True, exist_ok=True)
    known = f"{_quoted(known_hosts_path(project.inventory))} ~/.ssh/known_hosts"
    blocks = []
    for name in hosts:
        values = project.inventory.resolve(name).values
        lines = [f"Host {name}", f"  HostName {values.get('ansible_host', name)}",
                 f"  Port {values.get('ansible_port', 22)}"]
        if values.get("ansible_user"):
            lines.append(f"  User {values['ansible_user']}")
        if values.get("ansible_ssh_private_key_file"):
            key = (project.root / Path(str(values["ansible_ssh_private_key_file"])).expanduser()).resolve()
            lines += [f"  IdentityFile {_quoted(key)}", "  IdentitiesOnly yes"]
        blocks.append("\n".join(lines))
    blocks.append(
        "Host *\n  StrictHostKeyChecking yes\n"
        f"  UserKnownHostsFile {known}\n  LogLevel ERROR\n  ControlMaster auto\n  ControlPersist 60s\n"
        f"  ControlPath {_quoted(folder / 'cm-%C')}\n  ConnectTimeout 10"
    )
    path = folder / f"{project.env}.config"
    path.write_text("\n\n".join(blocks) + "\n")
    return path
