"""The command-line actions behind tasks.py, kept apart so they can be called and tested without Invoke."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from fabstack.engine import vault
from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.hostlock import WAIT_SECONDS, HostLocks
from fabstack.engine.inventory import load_inventory
from fabstack.engine.masking import Masker
from fabstack.engine.project import Project
from fabstack.engine.report import HostReport, Printer, recap, write_json
from fabstack.engine.runner import checked_fact_overrides, close_all, execute, gather_fleet, select_hosts
from fabstack.stack.apps import env_apps
from fabstack.tiers.env import load_env, plan_env


def deploy(
    root: Path,
    env: str,
    *,
    limit: str | None = None,
    roles: str | None = None,
    check: bool = False,
    diff: bool = False,
    overrides: list[str] | None = None,
    json_path: str | None = None,
    verbose: int = 0,
    forks: int = 10,
    lock_wait: float = WAIT_SECONDS,
    force_unlock: bool = False,
) -> list[HostReport]:
    """Converge the selected hosts; every local check runs before any host is contacted. Each host changed is
    held under its lock until the apps' release that follows is done."""
    started = time.monotonic()
    if json_path:
        check_writable(Path(json_path), "--json")
    project = load_env(root, env)
    project.set_overrides(overrides or [])
    setups = select_hosts(project, limit, roles)
    printer = Printer(project.masker, verbose=verbose, show_diff=diff or check)
    mode = " (check mode: nothing will change)" if check else ""
    print(f"deploy env={env} hosts={len(setups)}{mode}", flush=True)
    command = " ".join(["deploy", f"--env {env}", *([f"--limit {limit}"] if limit else []),
                        *([f"--roles {roles}"] if roles else [])])
    locks = HostLocks(command, wait=lock_wait, force=force_unlock, out=printer.line)
    releases: list[dict[str, Any]] = []
    failure: FabstackError | None = None
    try:
        reports = execute(project, setups, check=check, printer=printer, forks=forks, locks=locks)
        recap(reports)
        if verbose:
            print(f"resolves per host: {resolve_counts(project)}")
        if not any(r.failed for r in reports):
            failure = release_apps(project, releases, check=check, partial=limit is not None or roles is not None,
                                   locks=locks)
    finally:
        locks.release()
    if json_path:
        meta = {"env": env, "check": check, "seconds": round(time.monotonic() - started, 3), "releases": releases,
                "resolves": dict(project.resolves)}
        write_json(Path(json_path), reports, project.masker, meta, with_diffs=diff)
    if failure is not None:
        raise failure
    return reports


def resolve_counts(project: Project) -> str:
    """How often each host's values were worked out in this command, in one line (1 each, as the engine
    promises: ``1 (7 hosts)``)."""
    counts = project.resolves
    if set(counts.values()) == {1}:
        return f"1 ({len(counts)} hosts)"
    return ", ".join(f"{host} {count}" for host, count in counts.items())


def release_apps(project: Project, done: list[dict[str, Any]], *, check: bool, partial: bool,
                 locks: HostLocks | None = None) -> FabstackError | None:
    """The release step of a deploy: each app's configured ref, with a release's every step (a whole-fleet run
    only: a deploy of some hosts or roles leaves the apps as they are). Each app's outcome is added to ``done``;
    the first failure stops the step and is returned."""
    from fabstack.day2.release import Rollout, build_artifact, release_app

    apps = env_apps(project)
    if apps and partial:
        print("apps not released by a deploy of some hosts or roles: inv release does that")
        return None
    for app in apps:
        rollout = Rollout(project, app, locks=locks, own_locks=locks is None)
        if not rollout.all_hosts:
            continue  # no host of this env serves it
        try:
            artifact = build_artifact(project, app, None)
            figures = release_app(rollout, artifact, check=check)
            print(f"release {app.name}: changed={len(figures.changed)} (already live on {len(figures.unchanged)})")
            done.append({"app": app.name, "revision": artifact.revision, "changed": figures.changed,
                         "already_live": figures.unchanged, "seconds": figures.seconds})
        except FabstackError as exc:
            done.append({"app": app.name, "error": exc.line()})
            return exc
        finally:
            rollout.close()
    return None


def check_writable(path: Path, key: str) -> None:
    """Refuse, before any host is touched, an output file that could not be written afterwards."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or (path.exists() and not os.access(path, os.W_OK)) or not folder.is_dir() \
            or not os.access(folder, os.W_OK):
        raise FabstackError(f"cannot write {shorten(str(path), 120)}", key=key)


def capacity(root: Path, env: str, limit: str | None = None, overrides: list[str] | None = None,
             report: Path | None = None) -> int:
    """Print the env's connection and memory budget per tier and write the HTML report (``report``, by default
    ``.fabstack/reports/ENV-capacity.html``); returns the number of problems found.

    Facts come from the hosts (one round trip each); a host that cannot be reached is planned from its
    ``fabstack_facts`` in the inventory if it has them, and left out otherwise.
    """
    project = load_env(root, env)
    project.set_overrides(overrides or [])
    selected = [s.name for s in select_hosts(project, limit)]
    setups = [project.setup(host, None) for host in project.inventory.hosts]
    runs, hostfacts = gather_fleet(project, [s for s in setups if s.name in selected])
    close_all(runs)
    for run in runs:
        planned = checked_fact_overrides(run.setup)
        if run.name not in hostfacts and {"cpus", "memory_mb", "nofile_hard"} <= set(planned):
            hostfacts[run.name] = {"disks": [], "primary_address": "", **planned}
        elif run.name not in hostfacts:
            print(f"{run.name}: left out: {run.report.error}")
    budget = plan_env(project, {s.name: s for s in setups}, hostfacts)
    print(f"capacity env={env}")
    print("\n".join(budget.lines))
    for problem in budget.problems:
        report_error(FabstackError(problem.message, where=problem.where, key=problem.key, host=problem.host))
    if not budget.problems:
        print("budget fits")
    from fabstack.stack.capacityreport import write_report

    written = write_report(report or project.root / ".fabstack" / "reports" / f"{env}-capacity.html", env,
                           {s.name: s for s in setups}, project.groups(), hostfacts, budget)
    print(f"report: {written}")
    return len(budget.problems)


def inventory(root: Path, env: str, as_json: bool = False) -> str:
    """Every host's groups and resolved variables (as ``ansible-inventory --list`` shows them), as text."""
    inv = load_env(root, env, check_patterns=False).inventory
    listing = inv.as_ansible_list()
    masker = Masker(vault.revealed())

    def shown(value: Any, as_text: bool) -> Any:
        # an inline !vault value stays encrypted, as ansible-inventory shows it; any other secret is masked
        if isinstance(value, dict):
            return {k: shown(v, as_text) for k, v in value.items()}
        if isinstance(value, list):
            return [shown(v, as_text) for v in value]
        if isinstance(value, str):
            vaulted = vault.vaulted_text_of(value)
            if vaulted is not None:
                return "!vault (encrypted)" if as_text else {"__ansible_vault": vaulted}
            return masker(value)
        return value

    hostvars_of = listing["_meta"]["hostvars"]
    if as_json:
        listing["_meta"]["hostvars"] = {h: shown(v, False) for h, v in hostvars_of.items()}
        return json.dumps(listing, indent=2, sort_keys=True, default=str)
    lines = []
    for host, hostvars in hostvars_of.items():
        lines.append(f"{host}  groups: {', '.join(inv.group_names(host))}")
        lines.extend(f"  {key} = {shown(value, True)!r}" for key, value in sorted(hostvars.items()))
    return "\n".join(lines)


def sandbox_up(root: Path, env: str) -> None:
    """Start the env's hosts as podman containers and record their host keys."""
    from fabstack.sandbox import hosts as sandbox

    started = time.monotonic()
    hosts = sandbox.up(load_inventory(root.resolve(), env))
    print(f"sandbox up: {len(hosts)} hosts in {time.monotonic() - started:.1f}s "
          f"({', '.join(h.name + '=' + h.address for h in hosts)})")


def sandbox_down(root: Path, env: str) -> None:
    """Remove the env's sandbox containers and network."""
    from fabstack.sandbox import hosts as sandbox

    sandbox.down(load_inventory(root.resolve(), env))
    print("sandbox down")


def sandbox_status(root: Path, env: str) -> None:
    """Print each sandbox host's address and state."""
    from fabstack.sandbox import hosts as sandbox

    for name, address, state in sandbox.status(load_inventory(root.resolve(), env)):
        print(f"{name:<8} {address:<15} {state}")


def molecule(root: Path, scenario: str, action: str, capture: bool = False,
             timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``molecule ACTION -s SCENARIO`` against podman's Docker API (started if needed); ``capture`` keeps its
    output in the result instead of printing it; ``timeout`` (seconds) ends it with TimeoutExpired."""
    from fabstack.sandbox import hosts as sandbox

    root = root.resolve()
    if not (root / "molecule" / scenario / "molecule.yml").is_file():
        raise FabstackError(f"no molecule scenario {scenario!r} (molecule/{scenario}/molecule.yml)", key="--scenario")
    environment = sandbox.molecule_environment(root)
    argv = [str(Path(sys.executable).parent / "molecule"), action, "-s", scenario]
    return subprocess.run(argv, cwd=root, env=environment, capture_output=capture, text=True, check=False,
                          timeout=timeout)


def fail_on(reports: list[HostReport]) -> int:
    """The exit status of a run: 0, or 2 if any host failed."""
    return 2 if any(r.failed for r in reports) else 0


def report_error(exc: FabstackError) -> None:
    """Print a user error as its one line on stderr."""
    print(f"error: {exc.line()}", file=sys.stderr, flush=True)


def wants_traceback(argv: list[str]) -> bool:
    """Whether the user asked for tracebacks (``-v``/``--verbose`` on the command line, or FABSTACK_TRACEBACK)."""
    return bool(os.environ.get("FABSTACK_TRACEBACK")) or any(
        a in ("-v", "--verbose") or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in argv)


def report_unexpected(exc: BaseException, argv: list[str]) -> None:
    """Print an unexpected failure as one line with a hint; the traceback only when asked for."""
    if wants_traceback(argv):
        traceback.print_exception(exc)
    print(f"error: internal error: {type(exc).__name__}: {shorten(str(exc))} (this is a fabstack bug; run again "
          "with -v or FABSTACK_TRACEBACK=1 for the traceback)", file=sys.stderr, flush=True)




def unlock_vault(password_file: str | None, ask: bool) -> None:
    """Make the vault password known for this command: from a file, or asked at the terminal."""
    if password_file:
        vault.use_password_file(password_file)
    if ask:
        vault.ask_password()


def verify(root: Path, env: str, limit: str | None = None) -> int:
    """Run the deployed roles' testinfra tests against the env's hosts; pytest's exit status."""
    from fabstack.day2.verify import verify as run_verify

    return run_verify(root, env, limit)


def failover(root: Path, env: str, action: str, replica: str | None = None, host: str | None = None,
             force: bool = False, check: bool = False, tier: str | None = None, lock_wait: float = WAIT_SECONDS,
             force_unlock: bool = False) -> None:
    """One ``inv failover`` action on the env's db tier (``fabstack.day2.failover``)."""
    from fabstack.day2.failover import run_action

    run_action(root, env, action, replica, host, force, check, tier, lock_wait, force_unlock)


def fleet_status(root: Path, env: str) -> None:
    """What the env's Prometheus says now (``fabstack.day2.fleetstatus``)."""
    from fabstack.day2.fleetstatus import status

    status(root, env)


# ``inv backup.ACTION`` -> the function of fabstack.day2.backups that does it
BACKUP_ACTIONS = {"run": "run", "list": "show", "restore": "restore", "verify": "verify"}


def backup(root: Path, env: str, action: str, **options: Any) -> Any:
    """One ``inv backup.*`` action against the env's backup host; what the action returns."""
    from fabstack.day2 import backups

    do = getattr(backups, BACKUP_ACTIONS[action])
    return backups.with_backups(root, env, lambda handle: do(handle, **options))


def release(root: Path, env: str, **options: Any) -> list[Any]:
    """``inv release``: build each app's ref once and roll it out (``fabstack.day2.release``)."""
    from fabstack.day2 import release as releases

    return releases.release(root, env, **options)


def rollback(root: Path, env: str, **options: Any) -> list[Any]:
    """``inv release.rollback`` (``fabstack.day2.release``)."""
    from fabstack.day2 import release as releases

    return releases.rollback(root, env, **options)


def release_status(root: Path, env: str, app: str | None = None) -> None:
    """``inv release.status`` (``fabstack.day2.release``)."""
    from fabstack.day2 import release as releases

    releases.status(root, env, app=app)


def vault_file(action: str, path: Path) -> str:
    """``inv vault.ACTION PATH``: encrypt, decrypt, view or edit in ``$EDITOR``; what to print (view: the
    plaintext)."""
    if action == "view":
        return vault.view_file(path)
    if action == "edit":
        vault.edit_file(path, os.environ.get("EDITOR", "vi"))
    else:
        {"encrypt": vault.encrypt_file, "decrypt": vault.decrypt_file}[action](path)
    return ""


def trust_hosts(root: Path, env: str, limit: str | None = None, update: bool = False) -> None:
    """Record the hosts' SSH keys in ``inventory/ENV.known_hosts`` (``fabstack.engine.hostkeys``)."""
    from fabstack.engine.hostkeys import trust_hosts as trust

    trust(root, env, limit, update)
