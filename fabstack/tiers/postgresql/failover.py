"""Day-2 PostgreSQL: status, promote a replica (with fencing and PgBouncer repointing), rejoin, switchover.

Every step is idempotent so a command interrupted midway can simply be run again: ``status`` explains where it
stopped. PgBouncer is repointed only after the old primary is fenced, so it never has two writable primaries.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fabstack.engine.errors import FabstackError
from fabstack.engine.remote import RemoteHost
from fabstack.tiers.fleet import Fleet, at_once, converge, in_parallel, plan_or_stop
from fabstack.tiers.postgresql import patroni
from fabstack.tiers.postgresql.sql import sql
from fabstack.tiers.postgresql.state import DbState
from fabstack.tiers.topology import Topology

STATE_SQL = (
    "select pg_is_in_recovery(), "
    "case when pg_is_in_recovery() then pg_is_wal_replay_paused() else false end, "
    "coalesce((select status from pg_stat_wal_receiver), ''), "
    "case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end, "
    "(select timeline_id from pg_control_checkpoint()), "
    "case when pg_is_in_recovery() then greatest(0, coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), "
    "pg_last_wal_replay_lsn()), 0)) else 0 end, "
    "case when pg_is_in_recovery() then coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0) "
    "else 0 end, current_setting('synchronous_standby_names')"
)


PGBOUNCER_INI = "/etc/pgbouncer/pgbouncer.ini"


def userlist_password(user: str) -> str:
    """The shell command that prints a PgBouncer user's password from its userlist, on the PgBouncer host (so the
    password is read there, never sent)."""
    return f"sed -n 's/^\"{user}\" \"\\(.*\\)\"$/\\1/p' /etc/pgbouncer/userlist.txt"


@dataclass
class PgFleet(Fleet):
    """The PostgreSQL tier's hosts and its PgBouncers."""

    def state(self, name: str) -> DbState:
        """The database state of one host (down if SSH or PostgreSQL does not answer)."""
        def answer(host: RemoteHost) -> DbState:
            row = sql(host, STATE_SQL).split("|")
            return DbState(name, up=True, in_recovery=row[0] == "t", paused=row[1] == "t", receiver=row[2],
                           lsn=row[3], timeline=int(row[4] or 0), lag_bytes=int(float(row[5] or 0)),
                           lag_seconds=float(row[6] or 0), sync_names=row[7])

        return self.ask(name, answer, lambda host, why: DbState(host, note=why), "postgresql")

    def states(self, names: list[str]) -> dict[str, DbState]:
        """The database state of several hosts, asked at once (a dead host costs its connect timeout once, not
        once per host before it)."""
        return in_parallel(self.state, names)

    def pgbouncer_command(self, name: str, command: str, timeout: int = 0) -> str:
        """The shell command that runs one PgBouncer admin console command on a PgBouncer host (the password is
        read there, never sent)."""
        v = self.project.setup(name, None).vars
        admin, port = v["pgbouncer_admin_user"], v["pgbouncer_listen_port"]
        password = userlist_password(admin)
        limit = f"timeout {timeout} " if timeout else ""
        return (f"PGPASSWORD=\"$({password})\" {limit}psql -X -At -F '|' -h 127.0.0.1 -p {port} -U {admin} "
                f"-d pgbouncer -c {shlex.quote(command)}")

    def pgbouncer(self, name: str, command: str, check: bool = True, timeout: int = 0) -> str:
        """A PgBouncer admin console command on a PgBouncer host."""
        return self.host(name).run(self.pgbouncer_command(name, command, timeout), check=check)

    def pgbouncer_targets(self, name: str) -> dict[str, str]:
        """PgBouncer database entry -> the host it points at."""
        rows = self.pgbouncer(name, "SHOW DATABASES").splitlines()
        return {r.split("|")[0]: r.split("|")[1] for r in rows if "|" in r}


def address_names(fleet: PgFleet) -> dict[str, str]:
    """Address -> inventory name of every db host (to name what PgBouncer points at)."""
    return {fleet.address(h): h for h in fleet.db_hosts}


def status(fleet: PgFleet) -> list[DbState]:
    """Print one table of db hosts and what every PgBouncer points at; return the states."""
    if patroni.runs_under_patroni(fleet):
        return patroni.status(fleet)
    states = list(fleet.states(fleet.db_hosts).values())
    fenced = set(fleet.topology.fenced)
    fleet.out(f"{'HOST':<8}{'ROLE':<9}{'TL':>3} {'LSN':<12}{'LAG B':>8}{'LAG S':>8}  {'RECEIVER':<10}{'SYNC':<14}NOTE")
    for s in states:
        role = s.role + ("*" if s.name in fenced else "")
        fleet.out(f"{s.name:<8}{role:<9}{s.timeline:>3} {s.lsn:<12}{s.lag_bytes:>8}{s.lag_seconds:>8.1f}  "
                  f"{s.receiver:<10}{s.sync_names or '-':<14}{s.note}")
    primary = next((s for s in states if s.role == "primary"), None)
    if primary is not None:
        sync = sql(fleet.host(primary.name),
            "select application_name, state, sync_state from pg_stat_replication order by 1", check=False)
        slots = sql(fleet.host(primary.name), "select slot_name, active from pg_replication_slots order by 1",
                                             check=False)
        fleet.out(f"replication on {primary.name}: {sync.replace(chr(10), '; ') or 'none'}")
        fleet.out(f"slots on {primary.name}: {slots.replace(chr(10), '; ') or 'none'}")
    if fenced:
        fleet.out(f"fenced (* above): {', '.join(sorted(fenced))}: kept down until `inv failover rejoin`")
    names = address_names(fleet)
    for bouncer in fleet.group("pgbouncer"):
        try:
            targets = fleet.pgbouncer_targets(bouncer)
            shown = ", ".join(f"{db} -> {names.get(addr, addr)}" for db, addr in targets.items() if db != "pgbouncer")
        except FabstackError as exc:
            shown = f"not answering: {exc.message}"
        fleet.out(f"pgbouncer {bouncer}: {shown}")
    writable = [s.name for s in states if s.role == "primary"]
    if len(writable) > 1:
        fleet.out(f"WARNING: more than one writable primary: {', '.join(writable)}")
    return states


def choose_replica(fleet: PgFleet, wanted: str | None, states: dict[str, DbState]) -> str:
    """The replica to promote: the one asked for, else the live replica with the least replay lag."""
    replicas = fleet.replicas
    if wanted:
        if wanted not in fleet.db_hosts:
            raise FabstackError(f"{wanted} is not a db host", key="--replica")
        return wanted
    live = [states[h] for h in replicas if states[h].up]
    if not live:
        raise FabstackError("no replica answers; nothing to promote", key="--replica")
    return min(live, key=lambda s: s.lag_bytes).name


def preflight(fleet: PgFleet, target: str, old: str, states: dict[str, DbState], max_lag: int) -> list[str]:
    """Reasons to refuse promoting ``target`` (empty when it is safe)."""
    reasons = []
    t = states[target]
    if not t.up:
        reasons.append(f"{target} does not answer ({t.note})")
    elif not t.in_recovery:
        if fleet.topology.primary != target:
            reasons.append(f"{target} is not in recovery: it is already a primary")
    else:
        if t.paused:
            reasons.append(f"{target} has WAL replay paused")
        if t.lag_bytes > max_lag:
            reasons.append(f"{target} has {t.lag_bytes} bytes of received WAL not yet replayed (limit {max_lag})")
        if states.get(old) and states[old].up and t.receiver != "streaming":
            reasons.append(f"{target} is not streaming from {old} (receiver: {t.receiver or 'none'})")
    others = [s for n, s in states.items() if n not in (target, old) and s.role == "primary"]
    reasons += [f"{s.name} is another writable primary" for s in others]
    return reasons


def pause_bouncers(fleet: PgFleet, database: str, primary_alive: bool) -> None:
    """PAUSE the rw entry on every PgBouncer (clients queue); KILL it when the primary is gone."""
    for bouncer in fleet.group("pgbouncer"):
        if primary_alive:
            try:
                fleet.pgbouncer(bouncer, f"PAUSE {database}", timeout=15)
                fleet.out(f"  {bouncer}: PAUSE {database}")
                continue
            except FabstackError:
                fleet.out(f"  {bouncer}: PAUSE timed out, using KILL")
        fleet.pgbouncer(bouncer, f"KILL {database}", check=False)
        fleet.out(f"  {bouncer}: KILL {database} (new clients wait for RESUME)")


def repoint_bouncers(fleet: PgFleet, database: str, address: str) -> None:
    """Point every PgBouncer's rw entry at the new primary now and RESUME it: the entry's line is rewritten in
    place (the pgbouncer role's template writes ``NAME = host=ADDRESS ...``, so its converge right after finds
    nothing to change), then RELOAD and RESUME, in one round trip per PgBouncer and on all of them at once.
    Writes flow again before the slower work (converging roles, the other replicas, recording) is done."""
    def repoint(bouncer: str) -> str:
        return fleet.host(bouncer).run(
            f"sed -i -E 's/^({database} = host=)[^ ]+ /\\1{address} /' {PGBOUNCER_INI} && "
            f"{fleet.pgbouncer_command(bouncer, 'RELOAD')} && "
            f"{{ {fleet.pgbouncer_command(bouncer, f'RESUME {database}')} || true; }}")

    for bouncer in in_parallel(repoint, fleet.group("pgbouncer")):
        fleet.out(f"  {bouncer}: {database} -> {address}, RESUME {database}")


@contextmanager
def bouncers_held(fleet: PgFleet, target: str, wait_seconds: float) -> Iterator[None]:
    """Under Patroni, hold the clients' writes while the leader moves to ``target``: every PgBouncer's rw entry is
    PAUSEd (queries queue, none fails), and once HAProxy beside it routes to ``target`` its server connections,
    all to the old leader, are dropped (RECONNECT) and it RESUMEs."""
    bouncers = fleet.group("pgbouncer")
    rw = fleet.project.setup(bouncers[0], None).vars["pgbouncer_rw_name"] if bouncers else ""
    pause_bouncers(fleet, rw, primary_alive=True)
    try:
        yield
        address = fleet.address(target)
        for bouncer, routed in in_parallel(lambda b: route_reaches(fleet, b, address, wait_seconds),
                                           bouncers).items():
            fleet.out(f"  {bouncer}: HAProxy routes to {target}" if routed else
                      f"  {bouncer}: HAProxy does not route to {target} after {wait_seconds:.0f}s")
            fleet.pgbouncer(bouncer, f"RECONNECT {rw}", check=False)
    finally:
        resume_bouncers(fleet, rw)


def route_reaches(fleet: PgFleet, bouncer: str, address: str, wait_seconds: float) -> bool:
    """Wait (bounded) until a new connection through the HAProxy beside a PgBouncer reaches ``address`` (as the
    PgBouncer's first user, its password read on the host); True when it did. A PgBouncer with no HAProxy beside
    it has nothing to wait for."""
    v = fleet.project.setup(bouncer, None).vars
    if "haproxy_rw_port" not in v:
        return True
    user = v["pgbouncer_users"][0]
    password = userlist_password(user)
    ask = (f"PGPASSWORD=\"$({password})\" psql -X -At -h 127.0.0.1 -p {v['haproxy_rw_port']} -U {user} "
           f"-d {shlex.quote(v['pgbouncer_database'])} -c 'select host(inet_server_addr())' 2>/dev/null")
    tries = max(1, int(wait_seconds / 0.2))
    said = fleet.host(bouncer).run(f"for i in $(seq {tries}); do if test \"$({ask})\" = {shlex.quote(address)}; "
                                   "then echo routed; exit 0; fi; sleep 0.2; done", check=False,
                                   timeout=wait_seconds + 30)
    return said.strip().endswith("routed")


def resume_bouncers(fleet: PgFleet, database: str) -> None:
    """RESUME the rw entry on every PgBouncer (an entry that is not paused is left as it is)."""
    for bouncer in fleet.group("pgbouncer"):
        fleet.pgbouncer(bouncer, f"RESUME {database}", check=False)
        fleet.out(f"  {bouncer}: RESUME {database}")


def fence(fleet: PgFleet, old: str, force: bool) -> None:
    """Make sure ``old`` can never serve writes: stop and mask its PostgreSQL now, or (``force``, checked in the
    preflight) record it as fenced so the next contact masks it."""
    host = fleet.host(old)
    service = postgres_service(fleet, old)
    if host.reachable:
        host.service(service, "stopped", masked=True)
        fleet.out(f"  {old}: PostgreSQL stopped and masked")
    elif force:
        fleet.out(f"  {old}: unreachable; recorded as fenced (masked on next contact)")


def postgres_service(fleet: PgFleet, name: str) -> str:
    """The systemd unit of a host's cluster."""
    return str(fleet.project.setup(name, None).vars["postgresql_service"])


def follow(fleet: PgFleet, replica: str, primary: str) -> None:
    """Point a live replica at the new primary through its own slot."""
    host = fleet.host(replica)
    if not host.reachable:
        fleet.out(f"  {replica}: unreachable; it follows {primary} after `inv failover rejoin --host {replica}`")
        return
    v = fleet.project.setup(replica, None).vars
    slot = v["postgresql_slot"]
    address = fleet.address(primary)
    conninfo = (f"host={address} port={v['postgresql_port']} user={v['postgresql_replication_user']} "
                f"application_name={slot} passfile={v['postgresql_pgpass']}")
    sql(fleet.host(primary), f"select pg_create_physical_replication_slot('{slot}') where not exists "
                            f"(select from pg_replication_slots where slot_name = '{slot}')")
    sql(host, f"alter system set primary_conninfo = '{conninfo}'")
    sql(host, f"alter system set primary_slot_name = '{slot}'")
    sql(host, "select pg_reload_conf()")
    fleet.out(f"  {replica}: now follows {primary} through slot {slot}")


def promote(fleet: PgFleet, replica: str | None, force: bool, check: bool,
            max_lag: int = 16 * 1024 * 1024) -> str:
    """Promote a replica to primary: preflight, fence the old primary, pause PgBouncer, promote, repoint, resume."""
    if patroni.runs_under_patroni(fleet):
        return patroni.promote(fleet, replica, force, check)
    started = time.monotonic()
    old = fleet.primary
    states: dict[str, DbState] = {}
    # each db host asked as soon as it is reached, the PgBouncers reached meanwhile
    at_once(lambda: states.update(fleet.states(fleet.db_hosts)), lambda: fleet.connect(fleet.group("pgbouncer")))
    target = choose_replica(fleet, replica, states)
    if target == old and states[old].role == "primary" and old == fleet.topology.primary:
        raise FabstackError(f"{target} is already the primary", key="--replica")
    resuming = states[target].role == "primary" and fleet.topology.primary == target
    reasons = preflight(fleet, target, old, states, max_lag)
    if old and old != target and not fleet.host(old).reachable and not force:
        reasons.append(f"{old} does not answer, so it cannot be fenced now: re-run with --force to record it as "
                       "fenced (masked on its next contact; its own boot check keeps it read-only meanwhile)")
    old_alive = bool(old) and states[old].role == "primary"
    plan = (f"promote {target} (lag {states[target].lag_bytes} bytes); fence {old or 'nobody'} "
            f"({'answering' if states.get(old, DbState(old)).up else 'not answering'}); "
            f"{'PAUSE' if old_alive else 'KILL'} PgBouncer rw; repoint PgBouncer to {target}; "
            f"other replicas follow {target}" + (" (resuming an interrupted promote)" if resuming else ""))
    if plan_or_stop(fleet, plan, reasons, target, check):
        return target
    rw = fleet.project.setup(fleet.group("pgbouncer")[0], None).vars["pgbouncer_rw_name"] if fleet.group(
        "pgbouncer") else ""
    # clients are held at PgBouncer while the old primary is fenced: both at once, both before the promotion
    at_once(*([lambda: pause_bouncers(fleet, rw, old_alive)] if rw else []),
            *([lambda: fence(fleet, old, force)] if old and old != target else []))
    if states[target].in_recovery:
        promoted = sql(fleet.host(target), "select pg_promote(wait => true, wait_seconds => 60)")
        if promoted != "t":
            raise FabstackError("pg_promote did not finish within 60 s; run the command again", host=target)
        fleet.out(f"  {target}: promoted")
    if rw:
        repoint_bouncers(fleet, rw, fleet.address(target))
        fleet.out(f"  writes go to {target} {time.monotonic() - started:.1f}s after the command began")
    topology = fleet.topology
    topology.primary = target
    if old and old != target and old not in topology.fenced:
        topology.fenced.append(old)
    topology.fenced = [h for h in topology.fenced if h != target]
    fleet.record(topology)
    fleet.out(f"  topology recorded: primary {target}, fenced {', '.join(topology.fenced) or 'none'}")
    if rw:
        converge(fleet, "pgbouncer", "pgbouncer")  # what the role says, from the recorded topology
    for other in fleet.replicas:
        follow(fleet, other, target)
    converge(fleet, None, ",".join(h for h in fleet.db_hosts if fleet.host(h).reachable))
    fleet.out(f"promote done in {time.monotonic() - started:.1f}s")
    return target


def rejoin(fleet: PgFleet, name: str) -> None:
    """Make a fenced or stray old primary a replica of the current primary: pg_rewind, else a fresh clone."""
    if patroni.runs_under_patroni(fleet):
        return patroni.rejoin(fleet, name)
    started = time.monotonic()
    primary = fleet.primary
    if name == primary:
        raise FabstackError(f"{name} is the current primary", key="--host")
    if name not in fleet.db_hosts:
        raise FabstackError(f"{name} is not a db host", key="--host")
    host = fleet.host(name)
    if not host.reachable:
        raise FabstackError(f"cannot rejoin: {host.error}", host=name)
    v = fleet.project.setup(name, None).vars
    service = postgres_service(fleet, name)
    data, slot, pgpass = v["postgresql_data"], v["postgresql_slot"], v["postgresql_pgpass"]
    address = fleet.address(primary)
    source = (f"host={address} port={v['postgresql_port']} user={v['postgresql_replication_user']} "
              f"dbname=postgres passfile={pgpass}")
    sql(fleet.host(primary), f"select pg_create_physical_replication_slot('{slot}') where not exists "
                            f"(select from pg_replication_slots where slot_name = '{slot}')")
    host.wait_until_booted()  # an old primary that was just powered back on may still be starting its server
    host.service(service, "stopped")
    conninfo = f"host={address} port={v['postgresql_port']} user={v['postgresql_replication_user']}"

    def reclone() -> None:
        host.service(service, "stopped")
        host.run(f"rm -rf {data}.clone && runuser -u postgres -- pg_basebackup "
                 f"-D {data}.clone -R -X stream -c fast -d {shlex.quote(conninfo)} && rm -rf {data} && "
                 f"mv {data}.clone {data}")

    def as_standby() -> None:
        line = f"{conninfo} application_name={slot} passfile={pgpass}"
        host.run(f"runuser -u postgres -- touch {data}/standby.signal && "
                 f"runuser -u postgres -- sh -c \"grep -v '^primary_' {data}/postgresql.auto.conf > {data}/auto.tmp; "
                 f"echo \\\"primary_conninfo = '{line}'\\\" >> {data}/auto.tmp; "
                 f"echo \\\"primary_slot_name = '{slot}'\\\" >> {data}/auto.tmp; mv {data}/auto.tmp "
                 f"{data}/postgresql.auto.conf\"")

    def start_streaming() -> bool:
        # as a replica again, the postgresql role writes its config (max_connections at least the primary's),
        # unmasks and starts it
        try:
            converge(fleet, "postgresql", f"{primary},{name}")
        except FabstackError as exc:
            fleet.out(f"  {name}: did not start as a replica ({exc.message})")
            return False
        for _ in range(60):
            if fleet.state(name).receiver == "streaming":
                return True
            time.sleep(0.5)
        return False

    rewind = (f"runuser -u postgres -- {v['postgresql_bin']}/pg_rewind --target-pgdata={data} "
              f"--config-file={v['postgresql_etc']}/postgresql.conf "
              f"--source-server={shlex.quote(source)}")
    out = host.run(rewind, check=False)
    rewound = "Done!" in out or "no rewind required" in out
    if rewound:
        fleet.out(f"  {name}: pg_rewind from {primary}: {'no rewind required' if 'no rewind' in out else 'done'}")
    else:
        errors = [line for line in out.splitlines() if "error" in line.lower()] or out.splitlines()[-1:]
        fleet.out(f"  {name}: pg_rewind impossible ({errors[0] if errors else 'no output'}); re-cloning")
        reclone()
    as_standby()
    topology = fleet.topology
    topology.primary = topology.primary or primary
    topology.fenced = [h for h in topology.fenced if h != name]
    fleet.record(topology)
    if not start_streaming() and rewound:
        fleet.out(f"  {name}: the rewound copy does not stream from {primary}; re-cloning")
        reclone()
        as_standby()
        start_streaming()
    state = fleet.state(name)
    fleet.out(f"  {name}: {state.role}, receiver {state.receiver or 'none'}")
    if state.receiver != "streaming":
        raise FabstackError(f"rejoined but not streaming from {primary}; see `inv failover status`", host=name)
    if fleet.group("pgbouncer"):
        converge(fleet, "pgbouncer", "pgbouncer")  # the read-only entry may point at this replica again
    fleet.out(f"rejoin done in {time.monotonic() - started:.1f}s")


def switchover(fleet: PgFleet, replica: str | None, check: bool, wait_seconds: float = 30) -> str:
    """A planned switch that loses nothing: pause, stop the primary cleanly, wait for the target to replay its
    shutdown checkpoint, promote, repoint, resume, and rejoin the old primary as a replica."""
    if patroni.runs_under_patroni(fleet):
        return patroni.switchover(fleet, replica, check, held=lambda target: bouncers_held(fleet, target,
                                                                                          wait_seconds))
    started = time.monotonic()
    old = fleet.primary
    states = fleet.states(fleet.db_hosts)
    target = choose_replica(fleet, replica, states)
    reasons = preflight(fleet, target, old, states, 16 * 1024 * 1024)
    if not states[old].up or states[old].in_recovery:
        reasons.append(f"{old} is not a running primary: use `inv failover promote-replica`")
    if plan_or_stop(fleet, f"PAUSE PgBouncer rw; stop {old} cleanly; wait for {target} to replay its shutdown "
                    f"checkpoint; promote {target}; repoint PgBouncer; RESUME; rejoin {old} as a replica",
                    reasons, target, check):
        return target
    rw = fleet.project.setup(fleet.group("pgbouncer")[0], None).vars["pgbouncer_rw_name"]
    pause_bouncers(fleet, rw, primary_alive=True)
    v = fleet.project.setup(old, None).vars
    data = v["postgresql_data"]
    fleet.host(old).service(postgres_service(fleet, old), "stopped")
    control = fleet.host(old).run(f"{v['postgresql_bin']}/pg_controldata {data}")
    fields = dict(line.split(":", 1) for line in control.splitlines() if ":" in line)
    checkpoint = fields["Latest checkpoint location"].strip()
    if fields["Database cluster state"].strip() != "shut down":
        raise FabstackError(f"{old} did not shut down cleanly; RESUME and use promote-replica", host=old)
    fleet.out(f"  {old}: stopped cleanly, shutdown checkpoint at {checkpoint}")
    deadline = time.monotonic() + wait_seconds
    while True:
        replayed = sql(fleet.host(target), f"select pg_last_wal_replay_lsn() >= '{checkpoint}'::pg_lsn")
        if replayed == "t":
            break
        if time.monotonic() > deadline:
            fleet.host(old).service(postgres_service(fleet, old), "started")
            resume_bouncers(fleet, rw)
            raise FabstackError(f"{target} did not replay {checkpoint} within {wait_seconds:.0f}s; {old} restarted "
                                "as primary and PgBouncer resumed", host=target)
        time.sleep(0.1)
    fleet.out(f"  {target}: replayed {checkpoint}")
    sql(fleet.host(target), "select pg_promote(wait => true, wait_seconds => 60)")
    fleet.out(f"  {target}: promoted")
    fleet.record(Topology(primary=target, fenced=[old]))
    converge(fleet, "pgbouncer", "pgbouncer")
    resume_bouncers(fleet, rw)
    for other in fleet.replicas:
        follow(fleet, other, target)
    converge(fleet, None, target)  # what site.yml gives the primary (backups) follows it
    rejoin(fleet, old)
    fleet.out(f"switchover done in {time.monotonic() - started:.1f}s")
    return target
