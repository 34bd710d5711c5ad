"""fabstack's command line (Invoke tasks): ``fabstack deploy`` (or ``inv deploy`` in this repo), ``verify``,
``inventory``, ``failover``, ``backup.*``, ``sandbox.*``.

Every task reads inventory/, group_vars/, host_vars/, site.yml and roles/ from ``--root`` (default: the current
folder, a team's own deployment repo); fabstack's bundled roles are found beside the package. The default env is
``sandbox`` so that production is never hit by accident.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Collection, Context, Exit, task

from fabstack.cli import commands
from fabstack.engine.errors import FabstackError

# The vault options of every task that reads the env (the password itself never goes on the command line).
VAULT = {"vault_password_file": "read the vault password from this file", "ask_vault_pass": "prompt for it"}
# One command at a time per host (fabstack.engine.hostlock): how long to wait for another's lock, or take it over.
LOCK_WAIT = str(int(commands.WAIT_SECONDS))
LOCKS = {"lock_wait": f"seconds to wait for another command's lock on a host (default {LOCK_WAIT})",
         "force_unlock": "take over a lock whose holder is known to be gone"}


def _run(action: Callable[[], Any], vault_password_file: str | None = None, ask_vault_pass: bool = False) -> Any:
    try:
        commands.unlock_vault(vault_password_file, ask_vault_pass)
        return action()
    except FabstackError as exc:
        commands.report_error(exc)
        raise Exit(code=2) from None
    except (Exit, KeyboardInterrupt):
        raise
    except BrokenPipeError:
        # the reader went away (`inv failover status | head`): stop quietly, as other command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Exit(code=1) from None
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: one line, the traceback on request
        commands.report_unexpected(exc, sys.argv)
        raise Exit(code=2) from None


def whole_number(text: str | int, option: str, low: int, high: int) -> int:
    """A command-line count: a whole number from ``low`` to ``high``, or one line naming the option."""
    try:
        number = int(str(text).strip())
    except ValueError:
        raise FabstackError(f"must be a whole number from {low} to {high}, got {str(text)[:40]!r}",
                            key=option) from None
    if not low <= number <= high:
        raise FabstackError(f"must be a whole number from {low} to {high}, got {number}", key=option)
    return number


@task(
    iterable=["set_"],
    incrementable=["verbose"],
    help={
        "env": "inventory/ENV.yml to deploy (default: sandbox)",
        "limit": "hosts, groups or patterns (web,db1 / app* / !db2)",
        "roles": "only these roles, comma-separated",
        "check": "plan only: print diffs, change nothing",
        "diff": "print unified diffs of changed files",
        "set": "override a variable: --set key=value (repeatable, highest precedence)",
        "json": "write a machine-readable report to this file",
        "verbose": "-v shows unchanged operations, -vv every diff",
        "forks": "hosts worked on at once",
        "root": "the deployment repo (inventory/, group_vars/, roles/, site.yml)",
        **LOCKS,
        **VAULT,
    },
)
def deploy(
    c: Context, env: str = "sandbox", limit: str | None = None, roles: str | None = None, check: bool = False,
    diff: bool = False, set_: list[str] | None = None, json: str | None = None, verbose: int = 0, forks: str = "10",
    root: str = ".", lock_wait: str = LOCK_WAIT, force_unlock: bool = False, vault_password_file: str | None = None,
    ask_vault_pass: bool = False,
) -> None:
    """Converge hosts to the roles site.yml gives them; exits non-zero if any host failed."""
    reports = _run(lambda: commands.deploy(
        Path(root), env, limit=limit, roles=roles, check=check, diff=diff, overrides=set_, json_path=json,
        verbose=verbose, forks=whole_number(forks, "--forks", 1, 1000),
        lock_wait=whole_number(lock_wait, "--lock-wait", 0, 86_400), force_unlock=force_unlock,
    ), vault_password_file, ask_vault_pass)
    status = commands.fail_on(reports)
    if status:
        raise Exit(code=status)


@task(help={"env": "inventory/ENV.yml", "limit": "hosts, groups or patterns", "root": "the deployment repo", **VAULT})
def verify(c: Context, env: str = "sandbox", limit: str | None = None, root: str = ".",
           vault_password_file: str | None = None, ask_vault_pass: bool = False) -> None:
    """Run the deployed roles' testinfra tests against the env's hosts over SSH."""
    status = _run(lambda: commands.verify(Path(root), env, limit), vault_password_file, ask_vault_pass)
    if status:
        raise Exit(code=status)


@task(
    positional=["action"],
    help={
        "action": "status | promote-replica | rejoin | switchover",
        "env": "inventory/ENV.yml (default: sandbox)",
        "replica": "the replica to promote (default: the live one with the least lag)",
        "host": "rejoin: the old primary to make a replica",
        "force": "promote even though the old primary cannot be reached to fence it",
        "check": "print the plan (and any refusal) and stop",
        "tier": "the db tier, by name (default: the env's only one; a wrong name lists the env's tiers)",
        "root": "the deployment repo",
        **LOCKS,
        **VAULT,
    },
)
def failover(c: Context, action: str, env: str = "sandbox", replica: str | None = None, host: str | None = None,
             force: bool = False, check: bool = False, tier: str | None = None, root: str = ".",
             lock_wait: str = LOCK_WAIT, force_unlock: bool = False, vault_password_file: str | None = None,
             ask_vault_pass: bool = False) -> None:
    """Day-2 databases, the same for every db tier: `status`, `promote-replica` (fence, promote, repoint the
    poolers or replicas), `rejoin`, `switchover` (planned, loses nothing)."""
    _run(lambda: commands.failover(Path(root), env, action, replica, host, force, check, tier,
                                   whole_number(lock_wait, "--lock-wait", 0, 86_400), force_unlock),
         vault_password_file, ask_vault_pass)


@task(iterable=["set_"], help={"env": "inventory/ENV.yml", "limit": "hosts, groups or patterns",
                               "set": "override a variable: --set key=value", "root": "the deployment repo",
                               "report": "where the HTML report goes (default .fabstack/reports/ENV-capacity.html)",
                               **VAULT})
def capacity(c: Context, env: str = "sandbox", limit: str | None = None, set_: list[str] | None = None,
             root: str = ".", report: str | None = None, vault_password_file: str | None = None,
             ask_vault_pass: bool = False) -> None:
    """Print the connection and memory budget of every tier, and write an HTML report with the topology picture
    and each tier's bars against its limit; exits non-zero if it does not fit."""
    problems = _run(lambda: commands.capacity(Path(root), env, limit, set_, Path(report) if report else None),
                    vault_password_file, ask_vault_pass)
    if problems:
        raise Exit(code=2)


@task(name="status", help={"env": "inventory/ENV.yml", "root": "the deployment repo", **VAULT})
def fleet_status(c: Context, env: str = "sandbox", root: str = ".", vault_password_file: str | None = None,
                 ask_vault_pass: bool = False) -> None:
    """What the env's Prometheus says now: each alert rule's value per host against its threshold, and the alerts
    firing."""
    _run(lambda: commands.fleet_status(Path(root), env), vault_password_file, ask_vault_pass)


@task(name="inventory", help={"env": "inventory/ENV.yml", "json": "print ansible-inventory --list JSON",
                              "root": "the deployment repo", **VAULT})
def inventory_(c: Context, env: str = "sandbox", json: bool = False, root: str = ".",
               vault_password_file: str | None = None, ask_vault_pass: bool = False) -> None:
    """Print every host's groups and resolved variables, as Ansible would resolve them (secrets never in clear)."""
    print(_run(lambda: commands.inventory(Path(root), env, as_json=json), vault_password_file, ask_vault_pass))


@task(help={"scenario": "a folder under molecule/ (default: the whole topology)",
            "action": "molecule's command: test, converge, verify, destroy...", "root": "the deployment repo"})
def molecule(c: Context, scenario: str = "default", action: str = "test", root: str = ".") -> None:
    """Run a molecule scenario on the docker driver through podman's Docker API (image, key and API made first)."""
    status = _run(lambda: commands.molecule(Path(root), scenario, action)).returncode
    if status:
        raise Exit(code=status)


@task(help={"env": "the sandbox inventory", "root": "the deployment repo"})
def up(c: Context, env: str = "sandbox", root: str = ".") -> None:
    """Build the host image (once) and start the env's hosts as systemd+sshd containers."""
    _run(lambda: commands.sandbox_up(Path(root), env))


@task(help={"env": "the sandbox inventory", "root": "the deployment repo"})
def down(c: Context, env: str = "sandbox", root: str = ".") -> None:
    """Remove the sandbox hosts and their network."""
    _run(lambda: commands.sandbox_down(Path(root), env))


@task(help={"env": "the sandbox inventory", "root": "the deployment repo"})
def status(c: Context, env: str = "sandbox", root: str = ".") -> None:
    """Show each sandbox host's address and state."""
    _run(lambda: commands.sandbox_status(Path(root), env))


def _backups(env: str, root: str, action: str, **options: Any) -> Any:
    return _run(lambda: commands.backup(Path(root), env, action, **options))


@task(name="run", help={"kind": "pgBackRest: full, diff or incr (default: incr, full when there is none)",
                        "env": "inventory/ENV.yml", "root": "the deployment repo"})
def backup_run(c: Context, kind: str | None = None, env: str = "sandbox", root: str = ".") -> None:
    """Take a backup now on the backup host (what the scheduled cron job runs)."""
    _backups(env, root, "run", kind=kind)


@task(name="list", help={"env": "inventory/ENV.yml", "root": "the deployment repo"})
def backup_list(c: Context, env: str = "sandbox", root: str = ".") -> None:
    """List the backups, newest first; corrupted ones are marked (pgBackRest: with the WAL archive's span)."""
    _backups(env, root, "list")


@task(name="restore", help={"name": "the backup (see backup.list; pgBackRest: default the newest before --until)",
                            "target": "the host to restore on (dumps: default the backup host; pgBackRest: a "
                            "spare host with the pgbackrest role)", "into": "dumps: the database to restore into "
                            "(default: DB_restore)", "force": "allow restoring over an existing database",
                            "until": "through this second, 'YYYY-MM-DD HH:MM:SS' UTC (pgBackRest's WAL archive, "
                            "MariaDB's binary logs)",
                            "env": "inventory/ENV.yml", "root": "the deployment repo"})
def backup_restore(c: Context, name: str | None = None, target: str | None = None, into: str | None = None,
                   force: bool = False, until: str | None = None, env: str = "sandbox", root: str = ".") -> None:
    """Restore a backup into scratch databases; over a live database only with --force; where the tier replays
    logs, to a chosen second with --until (point-in-time). A pgBackRest repository restores the whole cluster
    onto a spare host (--target) and starts it as a new cluster."""
    _backups(env, root, "restore", name=name, target=target, into=into, force=force, until=until)


@task(name="verify", help={"env": "inventory/ENV.yml", "root": "the deployment repo"})
def backup_verify(c: Context, env: str = "sandbox", root: str = ".") -> None:
    """Restore the newest good backup into scratch databases and compare row counts and max ids with the source
    (pgBackRest: check the archive and every file's checksum)."""
    if not _backups(env, root, "verify"):
        raise Exit(code=2)


@task(name="release", default=True, help={
    "env": "inventory/ENV.yml", "app": "only this app", "ref": "branch, tag or commit to release (with --app)",
    "batch": "hosts per batch: N or P% (default 1)", "max_fail": "hosts that may fail before the rollout stops",
    "check": "show what would be released, change nothing", "force_unlock": "remove a stale release lock first",
    "root": "the deployment repo", **VAULT})
def release_run(c: Context, env: str = "sandbox", app: str | None = None, ref: str | None = None,
                batch: str | None = None, max_fail: str = "0", check: bool = False, force_unlock: bool = False,
                root: str = ".", vault_password_file: str | None = None, ask_vault_pass: bool = False) -> None:
    """Build each app's ref once and roll it out host by host behind the load balancer; exits non-zero (after
    rolling the failed batch back) when a step fails."""
    _run(lambda: commands.release(Path(root), env, app=app, ref=ref, batch=batch,
                                  max_fail=whole_number(max_fail, "--max-fail", 0, 10_000),
                                  check=check, force_unlock=force_unlock), vault_password_file, ask_vault_pass)


@task(name="rollback", help={"env": "inventory/ENV.yml", "app": "only this app",
                             "to": "the release to go back to (default: the previous good one)",
                             "batch": "hosts per batch: N or P%", "force_unlock": "remove a stale release lock first",
                             "root": "the deployment repo", **VAULT})
def release_rollback(c: Context, env: str = "sandbox", app: str | None = None, to: str | None = None,
                     batch: str | None = None, force_unlock: bool = False, root: str = ".",
                     vault_password_file: str | None = None, ask_vault_pass: bool = False) -> None:
    """Switch back to the previous good release with the same drain, reload and health steps; marks the bad one."""
    _run(lambda: commands.rollback(Path(root), env, app=app, to=to, batch=batch, force_unlock=force_unlock),
         vault_password_file, ask_vault_pass)


@task(name="status", help={"env": "inventory/ENV.yml", "app": "only this app", "root": "the deployment repo",
                           **VAULT})
def release_status(c: Context, env: str = "sandbox", app: str | None = None, root: str = ".",
                   vault_password_file: str | None = None, ask_vault_pass: bool = False) -> None:
    """Per app and host: the live revision, when it went live, the kept releases and any lock."""
    _run(lambda: commands.release_status(Path(root), env, app=app), vault_password_file, ask_vault_pass)


@task(name="encrypt", help={"path": "the file to encrypt in place"})
def vault_encrypt(c: Context, path: str) -> None:
    """Encrypt a file in place, in ansible-vault's format (password from FABSTACK_VAULT_PASSWORD[_FILE])."""
    _run(lambda: commands.vault_file("encrypt", Path(path)))


@task(name="decrypt", help={"path": "the file to decrypt in place"})
def vault_decrypt(c: Context, path: str) -> None:
    """Decrypt a vault file in place (left mode 0600)."""
    _run(lambda: commands.vault_file("decrypt", Path(path)))


@task(name="view", help={"path": "the vault file to show"})
def vault_view(c: Context, path: str) -> None:
    """Print a vault file's plaintext."""
    print(_run(lambda: commands.vault_file("view", Path(path))), end="")


@task(name="edit", help={"path": "the vault file to edit (created if missing)"})
def vault_edit(c: Context, path: str) -> None:
    """Edit a vault file in $EDITOR through a private temporary copy, re-encrypting it on save."""
    _run(lambda: commands.vault_file("edit", Path(path)))


@task(name="trust", help={"env": "inventory/ENV.yml", "limit": "hosts, groups or patterns",
                          "update": "replace a recorded key that changed (a rebuilt host)",
                          "root": "the deployment repo"})
def hosts_trust(c: Context, env: str = "sandbox", limit: str | None = None, update: bool = False,
                root: str = ".") -> None:
    """Record the hosts' SSH keys in inventory/ENV.known_hosts; later runs refuse any other key."""
    _run(lambda: commands.trust_hosts(Path(root), env, limit, update))


namespace = Collection(deploy, verify, capacity, failover, inventory_, fleet_status,
                       Collection("release", release_run, release_rollback, release_status),
                       Collection("backup", backup_run, backup_list, backup_restore, backup_verify),
                       Collection("vault", vault_encrypt, vault_decrypt, vault_view, vault_edit),
                       Collection("hosts", hosts_trust),
                       Collection("sandbox", up, down, status, molecule))


def main() -> None:
    """The ``fabstack`` command: these tasks as a program of their own, run from a team's deployment repo."""
    from importlib.metadata import PackageNotFoundError, version

    from invoke import Program

    try:
        release = version("fabstack")
    except PackageNotFoundError:
        release = "unknown"
    Program(namespace=namespace, name="fabstack", binary="fabstack", version=release).run()


if __name__ == "__main__":  # ``python -m fabstack.cli.tasks deploy ...``: the installed ``fabstack`` command
    main()
