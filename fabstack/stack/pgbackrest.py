"""What both sides of pgBackRest declare alike (the db hosts' ``pgbackrest`` role and the backup host's
``pgbackrest_repo`` role): the SSH each side runs to reach the other, with the env's generated key and the
recorded host keys only, and the one key the other side may log in with, from its addresses only."""

from __future__ import annotations

import shlex

from fabstack.engine import sshkeys
from fabstack.engine.role import RoleContext
from fabstack.stack.hostfiles import PGBACKREST_SSH
from fabstack.stack.hostssh import authorized_line, client_options

SSH_FOLDER = "/etc/pgbackrest/ssh"


def archive_command(stanza: str) -> str:
    """What PostgreSQL runs to archive one WAL segment into the stanza's repository."""
    return f"pgbackrest --stanza={stanza} archive-push %p"


def ssh_wrapper(user: str, key: str, known_hosts: str) -> str:
    """The script pgBackRest runs as ssh (``cmd-ssh``): nothing is read from the account's home."""
    return (f"#!/bin/sh\n# pgBackRest's ssh as {user}: the env's key and the recorded host keys only\n"
            f"exec /usr/bin/ssh {shlex.join(client_options(key, known_hosts))} \"$@\"\n")


def ssh_trust(ctx: RoleContext, *, user: str, home: str, private_key: str, reaches: list[str],
              peer_private_key: str, reached_by: list[str]) -> None:
    """Let ``user`` reach the hosts ``reaches`` over SSH with ``private_key``, and be reached from the hosts
    ``reached_by`` by the holder of ``peer_private_key`` (a login that can run commands, nothing forwarded)."""
    key, known_hosts = f"{SSH_FOLDER}/id_ed25519", f"{SSH_FOLDER}/known_hosts"
    # root's folder: the service account reads its key there and cannot swap what root wrote
    ctx.directory("/etc/pgbackrest", owner="root", group=user, mode="0750")
    ctx.directory(SSH_FOLDER, owner="root", group=user, mode="0750")
    ctx.file(key, private_key, owner=user, group=user, mode="0600", secret=True)
    lines = [line for name in reaches for line in ctx.host_key_lines(name)]
    ctx.file(known_hosts, "\n".join(lines) + "\n", group=user, mode="0640")
    ctx.file(PGBACKREST_SSH, ssh_wrapper(user, key, known_hosts), mode="0755")
    sources = [ctx.address_of(name) for name in reached_by]
    public = sshkeys.public_line(peer_private_key, "fabstack-pgbackrest")
    ctx.directory(f"{home}/.ssh", owner=user, group=user, mode="0700")
    ctx.file(f"{home}/.ssh/authorized_keys", authorized_line(public, sources), owner=user, group=user, mode="0600")
