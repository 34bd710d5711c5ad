"""SSH from one host of the fleet to another (a backup going to the backup host, pgBackRest reaching its
repository): the client options that trust the recorded host key alone and use the named key alone, and the
``authorized_keys`` line that admits one key from known addresses with nothing forwarded."""

from __future__ import annotations

# The port the firewall opens to SSH (its own rules say 22 too): a host-to-host transfer opens it to its senders,
# so a team that narrows firewall_ssh_sources to its own network does not cut its backups off.
SSH_PORT = 22


def client_options(key: str, known_hosts: str) -> list[str]:
    """ssh's options for a batch connection with ``key`` to a host whose key is in ``known_hosts`` (nothing
    learnt on first contact, no global known_hosts, no agent's keys, bounded waits)."""
    return ["-i", key, "-o", "IdentitiesOnly=yes", "-o", f"UserKnownHostsFile={known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]


def authorized_line(public_key: str, sources: list[str], command: str = "") -> str:
    """One ``authorized_keys`` line: ``public_key`` from ``sources`` only, no forwarding and no terminal, and
    when ``command`` is given, that command whatever the client asks."""
    forced = f',command="{command}"' if command else ""
    return f"from=\"{','.join(sources)}\",restrict{forced} {public_key}\n"
