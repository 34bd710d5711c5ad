"""Running a deploy: resolve locally, then per host (in parallel) facts, plan, apply, handlers, recap."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabstack.engine import operations as ops
from fabstack.engine.connection import HostConnection
from fabstack.engine.errors import FabstackError, shorten
from fabstack.engine.factcache import load_facts, save_facts
from fabstack.engine.hostlock import POLL_SECONDS, HostLocks, LockRefused, describe, held_by_another
from fabstack.engine.inventory import known_hosts_path
from fabstack.engine.project import HostSetup, Plan, Project
from fabstack.engine.report import Event, HostReport, Printer
from fabstack.engine.role import Role, RoleContext
from fabstack.engine.secrets import save_generated
from fabstack.engine.templating import environment


class InputError(FabstackError):
    """A problem in the user's files found while planning a host: the whole run stops before applying."""


@dataclass
class Planned:
    """One operation with its role and the plan made against the host's state."""

    role: Role
    op: ops.Operation
    plan: ops.Plan


@dataclass
class Guess:
    """A plan made from remembered facts, and the state its probes found in the round trip that fetched the real
    facts: used as it is when the real facts (of every host) are the remembered ones."""

    declared: list[tuple[Role, ops.Operation]]
    probes: list[dict[str, Any]]
    states: list[dict[str, Any]]


@dataclass
class HostRun:
    """A host's state through the run."""

    setup: HostSetup
    report: HostReport
    conn: HostConnection | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    planned: list[Planned] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    failure: Exception | None = None
    started: float = field(default_factory=time.monotonic)
    raw_facts: dict[str, Any] = field(default_factory=dict)
    guess: Guess | None = None
    # handlers a killed run left owed on the host (role -> names): they run in this run's apply
    pending: dict[str, list[str]] = field(default_factory=dict)
    # the host's lock as the probe read it (fabstack.engine.hostlock), and the token that is this command's
    lock: dict[str, Any] = field(default_factory=dict)
    lock_token: str = ""

    @property
    def name(self) -> str:
        """The host's inventory name."""
        return self.setup.name



def connect(project: Project, setup: HostSetup, timeout: float = 10) -> HostConnection:
    """An SSH connection to a host, trusting only keys recorded for the env (and the user's own known_hosts)."""
    known = [known_hosts_path(project.inventory), Path("~/.ssh/known_hosts").expanduser()]
    return HostConnection(setup.name, setup.vars, project.root, known, connect_timeout=timeout)


# The facts an inventory may override (``fabstack_facts``) and what each must be.
FACT_SHAPES: dict[str, tuple[type, str]] = {
    "cpus": (int, "a positive whole number"), "memory_mb": (int, "a positive whole number"),
    "nofile_hard": (int, "a positive whole number"), "primary_address": (str, "an address"),
    "hostname": (str, "a host name"), "proc_sys_writable": (bool, "true or false"),
    "container": (str, "a container kind or empty"), "virtualization": (str, "a virtualization kind"),
    "disks": (list, "a list of disks"), "addresses": (list, "a list of addresses"),
}


def checked_fact_overrides(setup: HostSetup) -> dict[str, Any]:
    """The host's ``fabstack_facts`` overrides, each of a known fact and of that fact's type."""
    overrides = setup.vars.get("fabstack_facts") or {}
    where, name_of_host = setup.resolved.origin("fabstack_facts"), setup.name
    if not isinstance(overrides, dict):
        raise InputError("must be a mapping of facts", where=where, key="fabstack_facts", host=name_of_host)
    for name, value in overrides.items():
        if name not in FACT_SHAPES:
            raise InputError(f"not a fact fabstack gathers (known: {', '.join(FACT_SHAPES)})", where=where,
                             key=f"fabstack_facts.{shorten(str(name))}", host=name_of_host)
        kind, shape = FACT_SHAPES[name]
        wrong = isinstance(value, bool) != (kind is bool) or not isinstance(value, kind)
        if wrong or (kind is int and value <= 0):
            raise InputError(f"must be {shape}, got {shorten(repr(value))}", where=where,
                             key=f"fabstack_facts.{name}", host=name_of_host)
    return overrides


def with_overrides(run: HostRun, raw: dict[str, Any]) -> dict[str, Any]:
    """A host's facts with any ``fabstack_facts`` overrides from the inventory on top."""
    return {**raw, **checked_fact_overrides(run.setup)}


def gather_facts(run: HostRun) -> None:
    """Round trip 1: the host's facts (overrides on top)."""
    assert run.conn is not None
    run.raw_facts = run.conn.agent({"action": "facts"})
    run.facts = with_overrides(run, run.raw_facts)


def declare(
    project: Project, run: HostRun, hostfacts: dict[str, dict[str, Any]], budget: Plan
) -> list[tuple[Role, ops.Operation]]:
    """Call each role's ``deploy`` to declare its operations (local: templates render here)."""
    declared: list[tuple[Role, ops.Operation]] = []
    seen: dict[str, tuple[str, ops.Operation]] = {}
    groups, hostvars = project.groups(), project.hostvars()
    for role in run.setup.roles:
        jinja = environment([role.templates_dir, project.root / "templates"])
        ctx = RoleContext(role=role, host=run.name, vars=run.setup.vars, facts=run.facts, jinja=jinja,
                          groups=groups, hostvars=hostvars, hostfacts=hostfacts, computed=budget.of(run.name),
                          root=project.root, host_roles=project.roles_for(run.name),
                          known_hosts=known_hosts_path(project.inventory))
        try:
            role.module.deploy(ctx)
        except FabstackError as exc:
            raise InputError(exc.message, where=exc.where, key=exc.key, host=exc.host or run.name) from exc
        for text in ctx.warnings:
            warning = f"{role.name}: {text}"
            if warning not in run.report.warnings:
                run.report.warnings.append(warning)
        for op in ctx.operations:
            if op.id in seen:
                first_role, first = seen[op.id]
                if first.desired() == op.desired():
                    continue  # two roles want the very same thing (a shared folder): declare it once
                raise InputError(f"{op.id} is declared differently by roles {first_role} and {role.name}",
                                 host=run.name)
            seen[op.id] = (role.name, op)
            declared.append((role, op))
    return declared


def open_and_gather(project: Project, run: HostRun) -> None:
    """Connect and gather the host's facts (round trip 1)."""
    run.conn = connect(project, run.setup)
    run.conn.open()
    gather_facts(run)


def probe_items(declared: list[tuple[Role, ops.Operation]]) -> list[dict[str, Any]]:
    """What the host must report for these operations, in their order (operations that read nothing left out)."""
    return [probe for _, op in declared if (probe := op.probe()) is not None]


def guess_and_probe(project: Project, run: HostRun, remembered: dict[str, dict[str, Any]], budget: Plan) -> None:
    """The steady state's single round trip: plan from the remembered facts and send that plan's probes with the
    request for the real facts. A plan that cannot be made from them falls back to asking for facts first."""
    assert run.conn is not None
    run.facts = remembered[run.name]
    try:
        declared = declare(project, run, remembered, budget)
    except InputError:
        gather_facts(run)  # declared again from the real facts, where the error is reported if it stays
        return
    probes = probe_items(declared)
    answer = run.conn.agent({"action": "probe", "items": probes, "facts": True, "lock_token": run.lock_token})
    run.lock = answer.get("lock", {})
    run.raw_facts = answer["facts"]
    run.facts = with_overrides(run, run.raw_facts)
    run.guess = Guess(declared, probes, answer["states"])
    run.pending = {role: list(owed) for role, owed in answer.get("pending", {}).items()}


def plan_host(
    project: Project, run: HostRun, hostfacts: dict[str, dict[str, Any]], budget: Plan, *, guessed_right: bool
) -> None:
    """Declare the host's operations and probe their state (one more round trip, unless the guess holds)."""
    assert run.conn is not None
    guess = run.guess
    declared = guess.declared if guess and guessed_right else declare(project, run, hostfacts, budget)
    items = probe_items(declared)
    if guess and items == guess.probes:
        states = guess.states
    else:
        answer = run.conn.agent({"action": "probe", "items": items, "lock_token": run.lock_token})
        run.lock = answer.get("lock", {})
        states = answer["states"]
        run.pending = {role: list(owed) for role, owed in answer.get("pending", {}).items()}
    probes = [op.probe() for _, op in declared]
    answers = iter(states)
    for (role, op), probe in zip(declared, probes, strict=True):
        state = next(answers) if probe is not None else {}
        run.planned.append(Planned(role, op, op.plan(state, run.facts)))


def role_payloads(run: HostRun) -> dict[str, dict[str, Any]]:
    """Each role's steps and handlers for the agent, for the roles that have anything to do."""
    steps_of: dict[int, list[dict[str, Any]]] = {}
    installing = False
    for p in run.planned:
        if p.plan.status == "change":
            steps_of[id(p)] = p.plan.steps
        elif installing and p.plan.status == "ok":
            # probed before this run's packages were installed: let the agent check it again
            steps_of[id(p)] = [p.op.desired()]
        installing = installing or (p.plan.status == "change" and isinstance(p.op, ops.Packages))
    payloads = {}
    for role in run.setup.roles:
        steps = [s for p in run.planned if p.role is role for s in steps_of.get(id(p), [])]
        if steps or run.pending.get(role.name):
            commands = role.handler_commands(run.setup.vars, run.name)
            handlers = [{"name": n, "command": c} for n, c in commands.items()]
            payloads[role.name] = {"name": role.name, "steps": steps, "handlers": handlers}
    return payloads


def apply_wave(run: HostRun, roles: list[str]) -> None:
    """Send the steps of this wave's roles in one round trip; a failed role stops the host's later waves."""
    if run.report.error or any(r["status"] == "failed" for r in run.results):
        return
    payloads = role_payloads(run)
    batch = [payloads[name] for name in roles if name in payloads]
    if batch:
        assert run.conn is not None
        run.results.extend(run.conn.agent({"action": "apply", "roles": batch})["results"])


def record(run: HostRun, results: list[dict[str, Any]] | None, check: bool, printer: Printer) -> None:
    """Turn plans (and apply results) into the host's events and print them."""
    by_id = {r["id"]: r for r in results or []}
    failed_role = next((p.role for p in run.planned if by_id.get(p.op.id, {}).get("status") == "failed"), None)
    for p in run.planned:
        event = Event(p.role.name, p.op.id, "ok", diff=p.plan.diff)
        if p.plan.status == "skip":
            event.status, event.message = "skipped", p.plan.reason
        elif p.op.id in by_id and p.plan.status == "ok":
            event.status = by_id[p.op.id]["status"]
        elif p.plan.status == "change":
            result = by_id.get(p.op.id)
            if check:
                event.status, event.message = "changed", "(check mode: not applied)"
            elif result is None:
                event.status = "skipped"
                event.message = f"not applied: role {failed_role.name} failed before it" if failed_role else ""
            else:
                event.status, event.message = result["status"], result.get("message", "")
                event.seconds = result.get("seconds", 0.0)
                if event.status == "failed":
                    event.message = f"{p.op.id}: {event.message}"
        run.report.events.append(event)
        printer.event(run.name, event)
    if check:
        for role, owed in run.pending.items():
            for name in owed:
                event = Event(role, f"handler {name}", "changed", "(check mode: owed by an interrupted run)")
                run.report.events.append(event)
                printer.event(run.name, event)
    for result in results or []:
        if result["id"].startswith("handler "):
            event = Event(result.get("role", ""), result["id"], result["status"], result.get("message", ""),
                          seconds=result.get("seconds", 0.0))
            run.report.events.append(event)
            printer.event(run.name, event)


def fail(run: HostRun, exc: Exception, printer: Printer) -> None:
    """Mark a host failed with a one-line reason."""
    message = exc.line() if isinstance(exc, FabstackError) else f"{type(exc).__name__}: {exc}"
    run.report.error = message
    printer.line(run.name, f"FAILED   {message}")


def before_planning(project: Project, hostfacts: dict[str, dict[str, Any]]) -> tuple[Plan, list[InputError]]:
    """Whole-fleet checks: the connection and memory budget, over every host of the env and every role of each
    (not only --limit or --roles: a role run alone reads what another role's commitment computes, as patroni
    reads the postgresql role's max_connections)."""
    setups = {name: project.setup(name, None) for name in project.inventory.hosts}
    budget = project.rules.plan(project, setups, hostfacts)
    return budget, [InputError(p.message, where=p.where, key=p.key, host=p.host) for p in budget.problems]


def declare_offline(
    project: Project, facts: dict[str, dict[str, Any]]
) -> dict[str, list[tuple[Role, ops.Operation]]]:
    """Every host's declared operations from given facts, touching no host (role tests, previews).

    The budget is computed as a deploy computes it; an input or budget problem raises its ``InputError``.
    """
    runs = [HostRun(setup=project.setup(name, None), report=HostReport(host=name)) for name in project.inventory.hosts]
    for run in runs:
        run.raw_facts = facts[run.name]
        run.facts = with_overrides(run, run.raw_facts)
    hostfacts = {run.name: run.facts for run in runs}
    budget, problems = before_planning(project, hostfacts)
    if problems:
        raise problems[0]
    return {run.name: declare(project, run, hostfacts, budget) for run in runs}


def gather_fleet(
    project: Project, setups: list[HostSetup], forks: int = 10
) -> tuple[list[HostRun], dict[str, Any]]:
    """Connect to every host and gather its facts in parallel (one round trip each); failures stay per host."""
    runs = [HostRun(setup=s, report=HostReport(host=s.name)) for s in setups]
    hostfacts: dict[str, dict[str, Any]] = {}

    def one(run: HostRun) -> None:
        try:
            open_and_gather(project, run)
            hostfacts[run.name] = run.facts
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            run.failure = exc
            run.report.error = exc.line() if isinstance(exc, FabstackError) else f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        list(pool.map(one, runs))
    return runs, hostfacts


def close_all(runs: list[HostRun]) -> None:
    """Close every host's SSH session, keeping its round-trip count in the report."""
    for run in runs:
        if run.conn is not None:
            run.report.round_trips = run.conn.round_trips
            run.conn.close()


def contact_fleet(
    project: Project, setups: list[HostSetup], forks: int, lock_token: str = ""
) -> tuple[list[HostRun], dict[str, Any], bool]:
    """Connect to every host and learn its facts, in parallel; failures stay per host.

    When every host's facts are remembered from an earlier run (and plan without a budget problem), each host is
    planned from them and its probes go with the facts request: one round trip. Returns the runs, the real facts
    and whether they are the remembered ones for the whole fleet (so the guessed plans stand).
    """
    remembered = load_facts(project.root, project.env)
    runs = [HostRun(setup=s, report=HostReport(host=s.name), lock_token=lock_token) for s in setups]
    guess: dict[str, dict[str, Any]] = {}
    guess_budget: Plan | None = None
    if runs and all(r.name in remembered for r in runs):
        try:
            guess = {r.name: with_overrides(r, remembered[r.name]) for r in runs}
            guess_budget, problems = before_planning(project, guess)
            if problems:
                guess, guess_budget = {}, None
        except InputError:
            guess, guess_budget = {}, None

    def one(run: HostRun) -> None:
        try:
            run.conn = connect(project, run.setup)
            run.conn.open()
            if guess_budget is not None:
                guess_and_probe(project, run, guess, guess_budget)
            else:
                gather_facts(run)
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            run.failure = exc
            run.report.error = exc.line() if isinstance(exc, FabstackError) else f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        list(pool.map(one, runs))
    hostfacts = {r.name: r.facts for r in runs if r.failure is None}
    save_facts(project.root, project.env, {r.name: r.raw_facts for r in runs if r.failure is None and r.raw_facts})
    return runs, hostfacts, bool(guess) and hostfacts == guess


def select_hosts(project: Project, limit: str | None = None, roles: str | None = None) -> list[HostSetup]:
    """The hosts a deploy of ``--limit``/``--roles`` converges, every local input checked first (the whole env's,
    not only the selected hosts'): an error raises before any host is contacted."""
    only = [r.strip() for r in roles.split(",") if r.strip()] if roles is not None else None
    if only is not None and not only:
        raise FabstackError(f"names no role: {shorten(repr(roles))}", key="--roles")
    for name in only or []:
        if name not in project.roles:
            raise FabstackError(f"unknown role {name!r} (site.yml assigns: {', '.join(project.roles)})", key="--roles")
    setups = [project.setup(host, only) for host in project.inventory.select_limit(limit)]
    if only is not None and not any(setup.roles for setup in setups):
        raise FabstackError(f"no selected host carries role {', '.join(only)}", key="--roles")
    everyone = {h: project.setup(h, None) for h in project.inventory.hosts}
    project.rules.check(project, everyone)
    for setup in everyone.values():
        checked_fact_overrides(setup)
    save_generated(project.root, project.env)  # every local check passed: now the run may write
    return setups


def execute(
    project: Project, setups: list[HostSetup], *, check: bool, printer: Printer, forks: int = 10,
    locks: HostLocks | None = None,
) -> list[HostReport]:
    """Plan every host in parallel; stop all if any input is bad; else take the lock of every host with work (a
    host another command holds is waited for, bounded, and planned again), apply (unless check) and report.
    ``locks`` are a calling command's (a failover re-running the deploy): taken under its token, left to it."""
    own_locks = locks is None
    locks = locks or HostLocks("deploy", out=printer.line)
    deadline = time.monotonic() + locks.wait
    with ThreadPoolExecutor(max_workers=max(1, forks)) as pool:
        while True:
            runs, input_errors = plan_fleet(project, setups, pool, forks, locks.token, printer)
            if check or input_errors:
                break
            waiting = lock_to_wait_for(runs, locks)
            if waiting is None:
                try:
                    locks.take({r.name: r.conn for r in runs if r.conn and not r.report.error and role_payloads(r)},
                               {r.name: int(r.lock.get("generation", 0)) for r in runs})
                    break
                except LockRefused as exc:
                    waiting = (exc.host, exc.state)
            if time.monotonic() >= deadline:
                refused = LockRefused(waiting[0], waiting[1], waited=locks.wait)
                for run in runs:
                    if not run.report.error:
                        fail(run, refused, printer)
                break
            printer.line(waiting[0], f"waiting: {describe(waiting[1])}")
            close_all(runs)
            time.sleep(POLL_SECONDS)
        try:
            if not input_errors and not check:
                for wave in project.waves():
                    list(pool.map(lambda run, wave=wave: apply_host_wave(run, wave, printer), runs))
        finally:
            if own_locks:
                locks.release()
        list(pool.map(lambda run: report_host(run, check, bool(input_errors), printer), runs))
    close_all(runs)
    return [r.report for r in runs]


def lock_to_wait_for(runs: list[HostRun], locks: HostLocks) -> tuple[str, dict[str, Any]] | None:
    """A host (and its lock) that another command holds, as the probes read them; None when none does or when
    ``--force-unlock`` takes them over."""
    if locks.force:
        return None
    held = [r for r in runs if not r.report.error and held_by_another(r.lock, locks.stale_after)]
    return (held[0].name, held[0].lock) if held else None


def plan_fleet(project: Project, setups: list[HostSetup], pool: ThreadPoolExecutor, forks: int, lock_token: str,
               printer: Printer) -> tuple[list[HostRun], list[InputError]]:
    """Contact every host, check the whole fleet's inputs and plan each host; the runs and the input errors."""
    runs, hostfacts, guessed_right = contact_fleet(project, setups, forks, lock_token)
    input_errors: list[InputError] = []
    for run in runs:
        if run.failure is not None:
            fail(run, run.failure, printer)
            if isinstance(run.failure, InputError):
                input_errors.append(run.failure)
    budget, problems = before_planning(project, hostfacts)
    for problem in problems:
        input_errors.append(problem)
        printer.line(problem.host or "budget", f"REFUSED  {problem.line()}")

    def phase_plan(run: HostRun) -> None:
        if run.report.error:
            return
        try:
            plan_host(project, run, hostfacts, budget, guessed_right=guessed_right)
            run.report.seconds = time.monotonic() - run.started
        except InputError as exc:
            input_errors.append(exc)
            fail(run, exc, printer)
        except Exception as exc:  # noqa: BLE001
            fail(run, exc, printer)

    if not input_errors:
        list(pool.map(phase_plan, runs))
    return runs, input_errors


def apply_host_wave(run: HostRun, roles: list[str], printer: Printer) -> None:
    """Apply one wave on a host; a failure marks the host failed."""
    try:
        apply_wave(run, roles)
    except Exception as exc:  # noqa: BLE001
        fail(run, exc, printer)
    finally:
        run.report.seconds = time.monotonic() - run.started


def report_host(run: HostRun, check: bool, refused: bool, printer: Printer) -> None:
    """Turn a host's plan and results into its events (a run refused for bad input reports nothing applied)."""
    try:
        if run.report.error:
            return
        if refused and not check:
            raise FabstackError("not applied: the run was refused before any change (see above)", host=run.name)
        record(run, run.results, check, printer)
    except Exception as exc:  # noqa: BLE001
        fail(run, exc, printer)
    finally:
        run.report.seconds = run.report.seconds or time.monotonic() - run.started
