"""Releasing a team's apps: the artifact shipped once to each host, unpacked beside the live release, and switched
to host by host behind the load balancer (drain, switch, graceful reload, health check, back in), workers last.

A failed step rolls its batch back to the previous release, returns it to the load balancer and stops the rollout.
Each host's release is held under a lock; ``rollback`` switches back with the same steps and marks the bad release.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fabstack.engine.errors import FabstackError, shorten, telling_line
from fabstack.engine.hostlock import HostLocks, lock_owner, owner_gone
from fabstack.engine.project import Project
from fabstack.engine.remote import RemoteHost, reach
from fabstack.stack import lb
from fabstack.stack.apps import App, chosen_apps
from fabstack.stack.artifact import Artifact, build

# Run on the host after unpacking: shared paths linked, writable ones handed to the app user, no link followed.
LAYOUT_SCRIPT = (Path(__file__).parent / "releaselayout.py").read_text()

ARTIFACTS_DIR = "/var/lib/fabstack/artifacts"
LOCK_FILE = ".fabstack-lock"
HISTORY_FILE = ".fabstack-history"
READY_MARK = ".fabstack-ready"
BAD_MARK = ".fabstack-bad"
REVISION_HEADER = "X-App-Revision"
# How long a host may take to answer its health check with the new release before it counts as failed.
HEALTH_SECONDS = 30

# Read in one round trip: the live release, the kept ones, the lock and whether the artifact is already there.
_STATE = r"""
import json, os, sys, time
dest, artifact = sys.argv[1], sys.argv[2]
link = os.path.join(dest, "current")
releases = []
folder = os.path.join(dest, "releases")
for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
    path = os.path.join(folder, name)
    releases.append({"name": name, "mtime": os.stat(path).st_mtime,
                     "ready": os.path.exists(os.path.join(path, ".fabstack-ready")),
                     "bad": os.path.exists(os.path.join(path, ".fabstack-bad"))})
def text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None
lock = os.path.join(dest, ".fabstack-lock")
print(json.dumps({
    "current": os.path.basename(os.readlink(link)) if os.path.islink(link) else "",
    "activated": os.lstat(link).st_mtime if os.path.islink(link) else 0,
    "releases": releases, "lock": text(lock), "lock_age": time.time() - os.stat(lock).st_mtime
    if os.path.exists(lock) else 0, "history": (text(os.path.join(dest, ".fabstack-history")) or "").split(),
    "artifact": bool(artifact) and os.path.isfile(artifact)}))
"""

# Run on the host: GET the app through its nginx until it answers 200 with the expected text (and, when the app
# sends the revision header, the wanted revision) or the time is up; prints what it saw last.
_HEALTH = r"""
import sys, time, urllib.error, urllib.request
url, expect, revision, header, seconds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
deadline, seen = time.time() + seconds, "no answer"
while True:
    try:
        try:
            r = urllib.request.urlopen(urllib.request.Request(url, headers={"Connection": "close"}), timeout=5)
        except urllib.error.HTTPError as error:
            r = error
        with r:
            body, served = r.read(65536).decode(errors="replace"), r.headers.get(header)
        seen = f"HTTP {r.status}, {header} {served}: {body[:120]!r}"
        new = served is None or revision.startswith(served) or served.startswith(revision)
        if new and r.status == 200 and expect in body:
            print("healthy: " + seen)
            sys.exit(0)
        if new and served is not None:  # the new release itself answered, and not as expected: no use waiting
            print(seen)
            sys.exit(1)
    except OSError as exc:
        seen = f"{type(exc).__name__}: {exc}"[:200]
    if time.time() > deadline:
        print(seen)
        sys.exit(1)
    time.sleep(0.5)
"""


@dataclass
class Figures:
    """What a release cost, for the report and the benchmark."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bytes_shipped: dict[str, int] = field(default_factory=dict)
    build_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class HostState:
    """One host's releases of one app, as read before acting."""

    current: str
    activated: float
    releases: list[dict[str, object]]
    lock: str | None
    lock_age: float
    history: list[str]
    artifact: bool

    def ready(self, revision: str) -> bool:
        """Whether the release is unpacked and prepared here."""
        return any(r["name"] == revision and r["ready"] for r in self.releases)

    def stale(self, keep: int) -> list[str]:
        """Releases past the newest ``keep``, newest first; the live one and the one before it are never stale."""
        kept = {self.current, self.previous(set())}
        newest = sorted(self.releases, key=lambda r: float(r["mtime"]), reverse=True)  # type: ignore[arg-type]
        kept |= {str(r["name"]) for r in newest[:keep]}
        return [str(r["name"]) for r in newest if str(r["name"]) not in kept]

    def previous(self, skip: set[str]) -> str:
        """The release live before the current one (not marked bad, still here), or ''."""
        good = {str(r["name"]) for r in self.releases if r["ready"] and not r["bad"]} - skip
        for revision in reversed(self.history):
            if revision != self.current and revision in good:
                return revision
        return ""


@dataclass
class Rollout:
    """One app's release over its hosts: who serves it, who runs its workers, the load balancers in front."""

    project: Project
    app: App
    out: Callable[[str], None] = print
    hosts: dict[str, RemoteHost] = field(default_factory=dict)
    figures: Figures = field(default_factory=Figures)
    # the hosts' own locks (one command at a time per host); a deploy that releases hands its own over
    locks: HostLocks | None = None
    own_locks: bool = True

    @property
    def web_hosts(self) -> list[str]:
        """Hosts that serve the app behind the load balancer, in inventory order."""
        return _members(self.project, self.app.serve)

    @property
    def worker_hosts(self) -> list[str]:
        """Hosts that run only the app's workers."""
        return [h for h in _members(self.project, self.app.workers) if h not in self.web_hosts]

    @property
    def all_hosts(self) -> list[str]:
        """Every host the app is released to: web hosts first, then worker-only ones."""
        return self.web_hosts + self.worker_hosts

    @property
    def lb_hosts(self) -> list[str]:
        """The load balancers: hosts whose nginx site is ``lb``."""
        return [h for h in self.project.inventory.hosts
                if self.project.setup(h, None).vars.get("nginx_site") == "lb"]

    def host(self, name: str) -> RemoteHost:
        """The host's SSH session (opened once)."""
        if name not in self.hosts:
            self.hosts[name] = reach(self.project, name, timeout=10)
            if not self.hosts[name].reachable:
                raise FabstackError(f"not reachable: {self.hosts[name].error}", host=name)
        return self.hosts[name]

    def address(self, name: str) -> str:
        """``address:port`` of the app on a host, as the load balancer's upstream names it."""
        return f"{self.project.setup(name, None).vars.get('ansible_host', name)}:{self.app.port}"

    def say(self, host: str, text: str) -> None:
        """One progress line."""
        self.out(f"{host:<8} | release {self.app.name}: {text}")

    def state(self, name: str, artifact: Artifact | None = None) -> HostState:
        """What the host holds of this app now."""
        where = f"{ARTIFACTS_DIR}/{artifact.file_name}" if artifact else ""
        answer = self.host(name).run(f"python3 -c {shlex.quote(_STATE)} {shlex.quote(self.app.dest)} "
                                     f"{shlex.quote(where)}")
        return HostState(**json.loads(answer))

    def close(self) -> None:
        """Close every SSH session."""
        for remote in self.hosts.values():
            remote.close()

    # ---------------------------------------------------------------- locks

    def lock(self, names: list[str], force_unlock: bool) -> list[str]:
        """Take every host's lock, or none: a held lock is reported with its owner and age."""
        taken: list[str] = []
        owner = lock_owner()
        path = shlex.quote(f"{self.app.dest}/{LOCK_FILE}")
        for name in names:
            remote = self.host(name)
            if force_unlock:
                remote.run(f"rm -f {path}")
            remote.run(f"mkdir -p {shlex.quote(self.app.dest)}")
            got = remote.run(f"(set -C; printf %s {shlex.quote(owner)} > {path}) 2>/dev/null && echo taken",
                             check=False)
            if got != "taken":
                self.unlock(taken)
                raise self.lock_error(name, self.state(name))
            taken.append(name)
        locks = self.host_locks(force_unlock)
        try:
            locks.take({name: self.host(name).conn for name in names if self.host(name).conn is not None})
        except FabstackError:
            self.unlock(taken)
            raise
        return taken

    def host_locks(self, force: bool = False) -> HostLocks:
        """The hosts' locks this release holds (made on first use unless a deploy handed its own over)."""
        if self.locks is None:
            self.locks = HostLocks(f"release --env {self.project.env} --app {self.app.name}", force=force,
                                   out=lambda host, text: self.say(host, text))
        return self.locks

    def lock_error(self, name: str, state: HostState) -> FabstackError:
        """The refusal for a host whose release lock another run holds: its owner and age."""
        held = state.lock or "unknown"
        gone = " (stale: its owner is gone)" if owner_gone(held) else ""
        return FabstackError(f"release locked by {shorten(held)} for {state.lock_age:.0f} s{gone}; --force-unlock "
                             "removes it", host=name, key=f"apps[{self.app.name}]")

    def unlock(self, names: list[str]) -> None:
        """Release the locks this run took."""
        for name in names:
            self.host(name).run(f"rm -f {shlex.quote(f'{self.app.dest}/{LOCK_FILE}')}", check=False)
        if self.locks is not None and self.own_locks:
            self.locks.release()

    # ---------------------------------------------------------------- steps on one host

    def ship(self, name: str, artifact: Artifact, state: HostState) -> None:
        """Upload the artifact (one transfer) unless the host has it already."""
        if state.artifact or state.ready(artifact.revision):
            return
        remote = self.host(name)
        assert remote.conn is not None
        target = f"{ARTIFACTS_DIR}/{artifact.file_name}"
        data = Path(artifact.path).read_bytes()
        command = (f"mkdir -p {ARTIFACTS_DIR} && chmod 700 {ARTIFACTS_DIR} && cat > {target}.part && "
                   f"mv {target}.part {target}")
        status, _, err = remote.conn.exec(f"{remote.conn.command_prefix()}sh -c {shlex.quote(command)}", data)
        if status != 0:
            raise FabstackError(f"upload failed: {err.decode(errors='replace').strip()[-200:]}", host=name,
                                key="ship")
        self.figures.bytes_shipped[name] = self.figures.bytes_shipped.get(name, 0) + len(data)

    def unpack(self, name: str, artifact: Artifact, state: HostState) -> None:
        """Unpack into ``releases/REVISION``, link the shared paths, own the writable ones, prepare the runtime."""
        if state.ready(artifact.revision):
            return
        app = self.app
        release = f"{app.releases_dir}/{artifact.revision}"
        q = shlex.quote
        steps = [f"rm -rf {q(release)}", f"mkdir -p {q(release)} {q(app.shared_dir)}",
                 f"tar -xzf {ARTIFACTS_DIR}/{artifact.file_name} -C {q(release)} --no-same-owner"]
        spec = {"release": release, "shared": app.shared_dir, "user": app.user, "shared_dirs": app.shared_dirs,
                "shared_files": app.shared_files, "writable": app.writable}
        steps.append(f"python3 -c {q(LAYOUT_SCRIPT)} {q(json.dumps(spec))}")
        steps.append(app.runtime.prepare(app, release))
        steps.append(f"touch {q(f'{release}/{READY_MARK}')}")
        self.run_step(name, "unpack", " && ".join(steps))

    def run_step(self, name: str, step: str, command: str) -> str:
        """A command on a host; a failure names the host, the step and the command's last output."""
        remote = self.host(name)
        status, out, err = remote.conn.exec(  # type: ignore[union-attr]
            f"{remote.conn.command_prefix()}sh -c {shlex.quote(command)}", timeout=900)  # type: ignore[union-attr]
        text = (out + err).decode(errors="replace").strip()
        if status != 0:
            last = self.project.masker(telling_line(text)) if text else f"exit {status}"  # never a secret
            raise FabstackError(f"{step} failed: {shorten(last, 200)}", host=name, key=f"apps[{self.app.name}]")
        return text

    def hook(self, name: str, stage: str, revision: str, first: bool) -> None:
        """The app's hooks of ``stage`` in the release, as its user; ``once`` hooks only on the first host."""
        release = f"{self.app.releases_dir}/{revision}"
        for index, hook in enumerate(self.app.hooks.get(stage, ())):
            if hook.once and not first:
                continue
            self.say(name, f"{stage} hook {index}{' (once)' if hook.once else ''}: {shorten(hook.run, 80)}")
            self.run_step(name, f"{stage} hook {shorten(hook.run, 60)}",
                          f"cd {shlex.quote(release)} && runuser -u {shlex.quote(self.app.user)} -- "
                          f"sh -c {shlex.quote(hook.run)}")

    def switch(self, name: str, revision: str) -> None:
        """Point ``current`` at the release in one atomic rename (a release switched to is good again), and note
        it in the host's history."""
        app = self.app
        q = shlex.quote
        self.run_step(name, "switch",
                      f"rm -f {q(f'{app.releases_dir}/{revision}/{BAD_MARK}')} && "
                      f"ln -sfn releases/{q(revision)} {q(app.dest)}/.current.new && "
                      f"mv -T {q(app.dest)}/.current.new {q(app.current)} && "
                      f"echo {q(revision)} >> {q(app.dest)}/{HISTORY_FILE}")

    def reload(self, name: str) -> None:
        """The runtime's graceful reload."""
        self.run_step(name, "reload", self.app.runtime.reload(self.app))

    def health(self, name: str, commit: str) -> str:
        """The app's health check on the host itself (through its nginx), waiting for the new revision."""
        url = f"http://127.0.0.1:{self.app.port}{self.app.health_path}"
        args = " ".join(shlex.quote(a) for a in (url, self.app.health_expect, commit, REVISION_HEADER,
                                                  str(HEALTH_SECONDS)))
        return self.run_step(name, f"health check {self.app.health_path}", f"python3 -c {shlex.quote(_HEALTH)} {args}")

    def drain(self, names: list[str], down: bool) -> None:
        """Take the hosts out of (or put them back into) every load-balancer upstream that routes to them."""
        addresses = {self.address(n) for n in names}
        for balancer in self.lb_hosts:
            if lb.set_down(self.host(balancer), addresses if down else set(), addresses):
                self.say(balancer, f"{'drained' if down else 'restored'} {', '.join(sorted(names))}")

    def mark_bad(self, name: str, revision: str) -> None:
        """Mark a release so a later rollback never returns to it."""
        path = shlex.quote(f"{self.app.releases_dir}/{revision}/{BAD_MARK}")
        self.run_step(name, "mark bad", f"if [ -d $(dirname {path}) ]; then touch {path}; fi")

    def prune(self, name: str) -> None:
        """Remove releases beyond the newest ``keep`` (the live one and the one before it always stay)."""
        stale = self.state(name).stale(self.app.keep)
        if stale:
            self.run_step(name, "prune", " && ".join(
                f"rm -rf {shlex.quote(f'{self.app.releases_dir}/{n}')}" for n in stale))

    # ---------------------------------------------------------------- the rollout

    def activate(self, batch: list[str], revision: str, commit: str, previous: dict[str, str], web: bool,
                 first: bool = False) -> None:
        """Switch a batch to ``revision``: drained first (web hosts), reloaded, health-checked, after-activate
        hooks run (``once`` ones only in the ``first`` batch), returned. On a failure the batch goes back to its
        previous release and into the load balancer before the error rises."""
        if web:
            self.drain(batch, down=True)
        try:
            for name in batch:
                self.switch(name, revision)
                if web:  # a worker-only host has no server: its workers restart after every web host
                    self.reload(name)
                    self.say(name, self.health(name, commit))
                self.hook(name, "after_activate", revision, first and name == batch[0])
                self.say(name, f"live on {revision}")
        except FabstackError:
            for name in batch:
                self.mark_bad(name, revision)
                if previous.get(name):
                    self.say(name, f"rolling back to {previous[name]}")
                    self.switch(name, previous[name])
                    if web:
                        self.reload(name)
            raise
        finally:
            if web:
                self.drain(batch, down=False)


def _members(project: Project, groups: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for group in groups:
        names += [h for h in project.inventory.select(group) if h not in names]
    return names


def batches(names: list[str], batch: str | None) -> list[list[str]]:
    """Hosts split into rolling batches: ``N`` hosts or ``P%`` of them at a time (default one at a time)."""
    if not names:
        return []
    size = 1
    if batch:
        text = batch.strip()
        try:
            size = max(1, round(len(names) * float(text[:-1]) / 100)) if text.endswith("%") else int(text)
        except ValueError:
            raise FabstackError(f"must be a number of hosts or a percentage, got {shorten(batch)}",
                                key="--batch") from None
        if size < 1 or (text.endswith("%") and not 0 < float(text[:-1]) <= 100):
            raise FabstackError(f"must be at least 1 host or 1-100%, got {shorten(batch)}", key="--batch")
    return [names[i:i + size] for i in range(0, len(names), size)]


def release_app(rollout: Rollout, artifact: Artifact, *, batch: str | None = None, max_fail: int = 0,
                check: bool = False, force_unlock: bool = False) -> Figures:
    """Roll ``artifact`` out to the app's hosts; return what it cost. Raises (after rolling back the failed batch)
    when more than ``max_fail`` hosts failed."""
    started = time.monotonic()
    app, figures = rollout.app, rollout.figures
    figures.build_seconds = artifact.build_seconds
    hosts = rollout.all_hosts
    if force_unlock:
        rollout.unlock(hosts)
    states = {name: rollout.state(name, artifact) for name in hosts}
    for name in hosts:
        if states[name].lock:  # another release may be halfway: even "nothing to do" is not known for sure
            raise rollout.lock_error(name, states[name])
    todo = [n for n in hosts if states[n].current != artifact.revision]
    figures.unchanged = [n for n in hosts if n not in todo]
    if not todo:
        rollout.out(f"release {app.name}: {artifact.revision} is live on every host (0 changed)")
        return figures
    if check:
        for name in todo:
            rollout.say(name, f"would release {artifact.revision} (live: {states[name].current or 'none'})")
        return figures
    taken = rollout.lock(hosts, force_unlock)
    failures: list[FabstackError] = []
    first = True
    try:
        plan = [(group, True) for group in batches([n for n in rollout.web_hosts if n in todo], batch)]
        plan += [(group, False) for group in batches([n for n in rollout.worker_hosts if n in todo], "100%")]
        for group, web in plan:
            try:
                for name in group:
                    rollout.ship(name, artifact, states[name])
                    rollout.unpack(name, artifact, states[name])
                    rollout.hook(name, "before_activate", artifact.revision, first)
                    first = False
                previous = {n: states[n].current for n in group}
                rollout.activate(group, artifact.revision, artifact.commit, previous, web,
                                 first=not figures.changed)
                figures.changed += group
            except FabstackError as exc:
                rollout.out(f"{exc.host or app.name:<8} | release {app.name}: FAILED {exc.message}")
                failures.append(exc)
                if len(failures) > max_fail:
                    raise
        if figures.changed:
            restart = app.runtime.restart_workers(app)
            for name in _members(rollout.project, app.workers):
                rollout.run_step(name, "restart workers", restart)
                rollout.say(name, "workers restarted on the new release")
        for name in figures.changed:
            rollout.prune(name)
    finally:
        rollout.unlock(taken)
        figures.seconds = round(time.monotonic() - started, 2)
    if failures:
        raise failures[0]
    return figures


def rollback_app(rollout: Rollout, to: str | None, *, batch: str | None = None,
                 force_unlock: bool = False) -> Figures:
    """Switch every host of the app back to ``to`` (default: the release live before the current one), with the
    same drain, reload and health steps; the release rolled away from is marked bad."""
    started = time.monotonic()
    app, figures = rollout.app, rollout.figures
    hosts = rollout.all_hosts
    states = {name: rollout.state(name) for name in hosts}
    first = states[hosts[0]]
    target = to or first.previous(set())
    if not target:
        raise FabstackError("no earlier good release to roll back to", host=hosts[0], key=f"apps[{app.name}]")
    for name in hosts:
        if not states[name].ready(target):
            raise FabstackError(f"release {shorten(target)} is not on this host", host=name, key="--to")
    taken = rollout.lock(hosts, force_unlock)
    try:
        todo = [n for n in hosts if states[n].current != target]
        commit = _commit_of(rollout, todo[0], target) if todo else target
        plan = [(group, True) for group in batches([n for n in rollout.web_hosts if n in todo], batch)]
        plan += [(group, False) for group in batches([n for n in rollout.worker_hosts if n in todo], "100%")]
        for group, web in plan:
            for name in group:
                if states[name].current:
                    rollout.mark_bad(name, states[name].current)
            rollout.activate(group, target, commit, {n: states[n].current for n in group}, web)
            figures.changed += group
        if figures.changed:
            restart = app.runtime.restart_workers(app)
            for name in _members(rollout.project, app.workers):
                rollout.run_step(name, "restart workers", restart)
    finally:
        rollout.unlock(taken)
        figures.seconds = round(time.monotonic() - started, 2)
    return figures


def _commit_of(rollout: Rollout, name: str, revision: str) -> str:
    return rollout.run_step(name, "read REVISION",
                            f"cat {shlex.quote(f'{rollout.app.releases_dir}/{revision}/REVISION')}").strip()


def build_artifact(project: Project, app: App, ref: str | None, out: Callable[[str], None] = print) -> Artifact:
    """The app's artifact, built (or taken from the cache) on this machine."""
    artifact = build(project.root, app, ref)
    out(f"release {app.name}: {artifact.revision} ({artifact.size} bytes, built in {artifact.build_seconds} s)")
    return artifact


def open_rollouts(root: Path, env: str, app: str | None, out: Callable[[str], None] = print
                  ) -> tuple[Project, list[Rollout]]:
    """Load the env and check all of it as a deploy does, before any host is contacted; one rollout per app."""
    from fabstack.engine.runner import select_hosts
    from fabstack.tiers.env import load_env

    project = load_env(root, env)
    apps = chosen_apps(project, app)
    select_hosts(project)
    if not apps:
        raise FabstackError("no apps are declared (see README: declaring your app)", key="apps")
    return project, [Rollout(project, chosen, out) for chosen in apps]


def release(root: Path, env: str, *, app: str | None = None, ref: str | None = None, batch: str | None = None,
            max_fail: int = 0, check: bool = False, force_unlock: bool = False,
            out: Callable[[str], None] = print) -> list[Figures]:
    """``release``: build each app's ref once and roll it out; the figures of each app."""
    if ref is not None and app is None:
        raise FabstackError("--ref needs --app (each app has its own repository)", key="--ref")
    batches(["x"], batch)  # a bad --batch is refused before anything is built
    if max_fail < 0:
        raise FabstackError(f"must be 0 or more, got {max_fail}", key="--max-fail")
    _, rollouts = open_rollouts(root, env, app, out)
    done = []
    for rollout in rollouts:
        if not rollout.all_hosts:
            out(f"release {rollout.app.name}: no host in this env serves it or runs its workers")
            continue
        try:
            artifact = build_artifact(rollout.project, rollout.app, ref, out)
            figures = release_app(rollout, artifact, batch=batch, max_fail=max_fail, check=check,
                                  force_unlock=force_unlock)
            out(f"release {rollout.app.name}: {artifact.revision} changed={len(figures.changed)} "
                f"(already live on {len(figures.unchanged)}) in {figures.seconds} s")
            done.append(figures)
        finally:
            rollout.close()
    return done


def rollback(root: Path, env: str, *, app: str | None = None, to: str | None = None, batch: str | None = None,
             force_unlock: bool = False, out: Callable[[str], None] = print) -> list[Figures]:
    """``release.rollback``: each app back to its previous good release (or ``to``), rolling; prints the time."""
    _, rollouts = open_rollouts(root, env, app, out)
    done = []
    for rollout in rollouts:
        if not rollout.all_hosts:
            continue
        try:
            figures = rollback_app(rollout, to, batch=batch, force_unlock=force_unlock)
            out(f"rollback {rollout.app.name}: changed={len(figures.changed)} in {figures.seconds} s")
            done.append(figures)
        finally:
            rollout.close()
    return done


def status(root: Path, env: str, *, app: str | None = None, out: Callable[[str], None] = print) -> None:
    """``release.status``: per app and host, the live revision, when it went live, and the kept releases."""
    _, rollouts = open_rollouts(root, env, app, out)
    for rollout in rollouts:
        try:
            out(f"app {rollout.app.name} ({rollout.app.runtime.name})")
            for name in rollout.all_hosts:
                state = rollout.state(name)
                when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.activated)) if state.activated \
                    else "never"
                kept = " ".join(f"{r['name']}{'*' if r['name'] == state.current else ''}"
                                f"{' (bad)' if r['bad'] else ''}" for r in
                                sorted(state.releases, key=lambda r: float(r["mtime"])))  # type: ignore[arg-type]
                lock = f"  LOCKED by {state.lock} for {state.lock_age:.0f} s" if state.lock else ""
                out(f"  {name:<8} live {state.current or 'none'} since {when}; kept: {kept or 'none'}{lock}")
        finally:
            rollout.close()
