"""Day-2 MariaDB: status, promote a replica (fencing the old primary, the others repointed by GTID), rejoin,
switchover (planned, loses nothing: GTID positions compared before the new primary takes writes).

Like PostgreSQL's (``pgfailover``), every step can be run again after an interruption; ``status`` says where the
tier stands. A rejoined old primary is seeded afresh from the new primary (the replica role's seed), since it
may hold transactions nobody else has.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass

from fabstack.engine.errors import FabstackError
from fabstack.stack.hostfiles import SEEDED
from fabstack.tiers.fleet import Fleet, converge, in_parallel, plan_or_stop
from fabstack.tiers.mariadb.sql import mariadb
from fabstack.tiers.topology import Topology

# One round trip per host: this server's place and positions, then its replication status.
STATE_COMMAND = ("mariadb --batch -N -e 'select @@read_only, @@gtid_binlog_pos, @@gtid_slave_pos' && "
                 "mariadb --batch -e 'SHOW SLAVE STATUS\\G'")
# Seconds a new primary may take to apply what it received before it takes writes.
APPLY_TIMEOUT = 60


def gtid_seqs(position: str) -> dict[int, int]:
    """Domain -> sequence number of a GTID position such as ``0-11-42,1-12-7``."""
    found: dict[int, int] = {}
    for part in filter(None, (p.strip() for p in position.split(","))):
        domain, _server, seq = part.split("-")
        found[int(domain)] = int(seq)
    return found


def missing(have: str, wanted: str) -> int:
    """How many transactions of position ``wanted`` position ``have`` lacks (0 when it holds them all)."""
    mine = gtid_seqs(have)
    return sum(max(0, seq - mine.get(domain, 0)) for domain, seq in gtid_seqs(wanted).items())


@dataclass
class MariaState:
    """What one MariaDB host says about itself."""

    name: str
    up: bool = False
    read_only: bool = False
    binlog_pos: str = ""
    applied_pos: str = ""
    received_pos: str = ""
    master: str = ""
    io: str = ""
    sql: str = ""
    behind: str = ""
    error: str = ""
    note: str = ""

    @property
    def role(self) -> str:
        """primary (writable, replicating from nobody), replica, read-only (neither) or down."""
        if not self.up:
            return "down"
        if self.master:
            return "replica"
        return "read-only" if self.read_only else "primary"

    @property
    def position(self) -> str:
        """The transactions this host holds: what it applied as a replica, else what it wrote."""
        return self.applied_pos if self.master else self.binlog_pos


def parse_state(name: str, output: str) -> MariaState:
    """A host's state from ``STATE_COMMAND``'s output."""
    first, *rest = output.splitlines()
    read_only, binlog, applied = (first.split("\t") + ["", ""])[:3]
    status = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in rest) if _}
    return MariaState(name, up=True, read_only=read_only == "1", binlog_pos=binlog, applied_pos=applied,
                      received_pos=status.get("Gtid_IO_Pos", ""), master=status.get("Master_Host", ""),
                      io=status.get("Slave_IO_Running", ""), sql=status.get("Slave_SQL_Running", ""),
                      behind=status.get("Seconds_Behind_Master", ""),
                      error=status.get("Last_SQL_Error", "") or status.get("Last_IO_Error", ""))


@dataclass
class MariaFleet(Fleet):
    """The MariaDB tier's hosts."""

    def state(self, name: str) -> MariaState:
        """The state of one host (down if SSH or MariaDB does not answer)."""
        return self.ask(name, lambda host: parse_state(name, host.run(STATE_COMMAND)),
                        lambda host, why: MariaState(host, note=why), "mariadb")

    def states(self, names: list[str]) -> dict[str, MariaState]:
        """The state of several hosts, asked at once."""
        return in_parallel(self.state, names)

    def repoint(self, replica: str, primary: str) -> None:
        """Make a live replica replicate from ``primary`` by GTID (its account and password stay as they are)."""
        port = self.project.setup(replica, None).vars["mariadb_port"]
        mariadb(self.host(replica), f"STOP SLAVE; CHANGE MASTER TO MASTER_HOST = '{self.address(primary)}', "
                                   f"MASTER_PORT = {port}, MASTER_USE_GTID = slave_pos; START SLAVE")


def status(fleet: MariaFleet) -> list[MariaState]:
    """Print one table of the tier's hosts; return their states."""
    states = list(fleet.states(fleet.db_hosts).values())
    fenced = set(fleet.topology.fenced)
    fleet.out(f"{'HOST':<8}{'ROLE':<11}{'RO':<4}{'IO':<5}{'SQL':<5}{'LAG S':>6}  {'FROM':<14}{'GTID':<22}NOTE")
    names = {fleet.address(h): h for h in fleet.db_hosts}
    for s in states:
        role = s.role + ("*" if s.name in fenced else "")
        fleet.out(f"{s.name:<8}{role:<11}{('ON' if s.read_only else 'OFF') if s.up else '-':<4}{s.io or '-':<5}"
                  f"{s.sql or '-':<5}{s.behind or '-':>6}  {names.get(s.master, s.master) or '-':<14}"
                  f"{s.position or '-':<22}{s.error or s.note}")
    if fenced:
        fleet.out(f"fenced (* above): {', '.join(sorted(fenced))}: kept down until `inv failover rejoin`")
    writable = [s.name for s in states if s.role == "primary"]
    if len(writable) > 1:
        fleet.out(f"WARNING: more than one writable primary: {', '.join(writable)}")
    return states


def choose_replica(fleet: MariaFleet, wanted: str | None, states: dict[str, MariaState]) -> str:
    """The replica to promote: the one asked for, else the live replica that received the most."""
    if wanted:
        return wanted
    live = [states[h] for h in fleet.replicas if states[h].up]
    if not live:
        raise FabstackError("no replica answers; nothing to promote", key="--replica")
    return max(live, key=lambda s: (sum(gtid_seqs(s.received_pos or s.position).values()),
                                    sum(gtid_seqs(s.position).values()))).name


def preflight(fleet: MariaFleet, target: str, old: str, states: dict[str, MariaState]) -> list[str]:
    """Reasons to refuse promoting ``target`` (empty when it is safe)."""
    t = states[target]
    reasons = []
    if not t.up:
        reasons.append(f"{target} does not answer ({t.note})")
    elif t.role == "replica" and t.sql != "Yes":
        reasons.append(f"{target}'s SQL thread is not running ({t.error or 'stopped'}): it would lose what it "
                       "has not applied")
    elif t.role != "replica" and fleet.topology.primary != target:
        reasons.append(f"{target} is not a replica (it is {t.role})")
    reasons += [f"{s.name} is another writable primary" for n, s in states.items()
                if n not in (target, old) and s.role == "primary"]
    return reasons


def take_writes(fleet: MariaFleet, target: str, state: MariaState, wait_for: str) -> None:
    """Apply everything received up to ``wait_for``, stop replicating and accept writes."""
    host = fleet.host(target)
    if state.role == "replica":
        if wait_for:
            done = mariadb(host, f"SELECT MASTER_GTID_WAIT('{wait_for}', {APPLY_TIMEOUT})")
            if done != "0":
                raise FabstackError(f"did not apply up to {wait_for} within {APPLY_TIMEOUT} s; nothing changed on "
                                    "it: run the command again", host=target)
        mariadb(host, "STOP SLAVE; RESET SLAVE ALL")
    mariadb(host, "SET GLOBAL read_only = 0")


def fence(fleet: MariaFleet, old: str) -> None:
    """Make ``old`` refuse writes now, then stop and mask its MariaDB (when it answers)."""
    host = fleet.host(old)
    if not host.reachable:
        fleet.out(f"  {old}: unreachable; recorded as fenced (masked on next contact)")
        return
    mariadb(host, "SET GLOBAL read_only = 1", check=False)
    host.service("mariadb", "stopped", masked=True)
    fleet.out(f"  {old}: read_only, MariaDB stopped and masked")


def follow_new_primary(fleet: MariaFleet, target: str, others: list[str]) -> None:
    """Repoint the other live replicas to the new primary, at once."""
    live = [h for h in others if fleet.host(h).reachable]
    in_parallel(lambda h: fleet.repoint(h, target), live)
    for name in others:
        fleet.out(f"  {name}: " + (f"replicates from {target} by GTID" if name in live else
                                   f"unreachable; `inv failover rejoin --host {name}` seeds it from {target}"))


# The roles that render the tier's primary and replicas into an app's configuration (reloading the app), re-run
# on their hosts as soon as the new primary takes writes.
APP_ROLES = ("php_app",)


def reachable(fleet: MariaFleet, names: list[str]) -> list[str]:
    """The hosts that answer (probed, not reached: a deploy opens its own sessions)."""
    return [name for name, ok in in_parallel(fleet.answers, names).items() if ok]


def repoint_apps(fleet: MariaFleet, started: float) -> None:
    """Converge the app hosts' database settings to the recorded topology right away (the rest waits)."""
    hosts = reachable(fleet, [h for h in fleet.project.inventory.hosts
                              if {r.name for r in fleet.project.roles_for(h)} & set(APP_ROLES)])
    if hosts:
        converge(fleet, ",".join(APP_ROLES), ",".join(hosts))
        fleet.out(f"  apps write to the new primary {time.monotonic() - started:.1f}s after the command began")


def settle(fleet: MariaFleet) -> None:
    """Converge every reachable host of the env to the recorded topology (read_only settings, the fenced host's
    mask, a rejoining host's seed, the apps' database hosts) once writes flow again."""
    converge(fleet, None, ",".join(reachable(fleet, list(fleet.project.inventory.hosts))))


def promote(fleet: MariaFleet, replica: str | None, force: bool, check: bool) -> str:
    """Promote a replica after the primary failed: preflight, fence, apply what was received, take writes,
    repoint the other replicas, record, converge."""
    started = time.monotonic()
    old = fleet.primary
    states = fleet.states(fleet.db_hosts)
    target = choose_replica(fleet, replica, states)
    if target == old and states[old].role == "primary":
        raise FabstackError(f"{target} is already the primary", key="--replica")
    reasons = preflight(fleet, target, old, states)
    if old and old != target and not fleet.host(old).reachable and not force:
        reasons.append(f"{old} does not answer, so it cannot be fenced now: re-run with --force to record it as "
                       "fenced (masked on its next contact)")
    t = states[target]
    if plan_or_stop(fleet, f"promote {target} (received {t.received_pos or t.position or 'nothing'}, applied "
                    f"{t.position or 'nothing'}); fence {old or 'nobody'}; the other replicas follow {target} by GTID",
                    reasons, target, check):
        return target
    if old and old != target:
        fence(fleet, old)
    take_writes(fleet, target, t, t.received_pos)
    fleet.out(f"  {target}: takes writes {time.monotonic() - started:.1f}s after the command began, having "
              f"applied {t.received_pos or t.position or 'nothing'}")
    others = [h for h in fleet.replicas if h != target]
    fenced = [h for h in fleet.topology.fenced if h != target] + ([old] if old and old != target else [])
    fleet.record(Topology(primary=target, fenced=sorted(set(fenced))))
    fleet.out(f"  topology recorded: primary {target}, fenced {', '.join(sorted(set(fenced))) or 'none'}")
    repoint_apps(fleet, started)
    follow_new_primary(fleet, target, others)
    settle(fleet)
    fleet.out(f"done in {time.monotonic() - started:.1f}s")
    return target


def switchover(fleet: MariaFleet, replica: str | None, check: bool) -> str:
    """A planned switch that loses nothing: the primary refuses writes, the target applies up to the primary's
    last GTID, takes writes, and the old primary replicates from it."""
    started = time.monotonic()
    old = fleet.primary
    states = fleet.states(fleet.db_hosts)
    target = choose_replica(fleet, replica, states)
    reasons = preflight(fleet, target, old, states)
    if states[old].role != "primary":
        reasons.append(f"{old} is not a running primary: use `inv failover promote-replica`")
    if states[target].role == "replica" and states[target].io != "Yes":
        reasons.append(f"{target} is not receiving from {old} (IO thread {states[target].io or 'stopped'})")
    if plan_or_stop(fleet, f"{old} read_only; {target} applies up to {old}'s last GTID and takes writes; {old} and "
                    f"the other replicas replicate from {target}", reasons, target, check):
        return target
    old_host = fleet.host(old)
    mariadb(old_host, "SET GLOBAL read_only = 1")
    last = mariadb(old_host, "select @@gtid_binlog_pos")
    fleet.out(f"  {old}: read_only at GTID {last or 'empty'}")
    try:
        take_writes(fleet, target, states[target], last)
    except FabstackError:
        mariadb(old_host, "SET GLOBAL read_only = 0")
        fleet.out(f"  {old}: takes writes again")
        raise
    now = fleet.state(target)
    lost = missing(now.binlog_pos, last)
    fleet.out(f"  {target}: takes writes {time.monotonic() - started:.1f}s after the command began; holds "
              f"{now.binlog_pos or 'empty'}: {lost} of {old}'s transactions missing")
    if lost:
        raise FabstackError(f"{target} lacks {lost} transactions of {old}; see `inv failover status`", host=target)
    others = [h for h in fleet.replicas if h not in (target, old)]
    fleet.record(Topology(primary=target, fenced=[h for h in fleet.topology.fenced if h not in (target, old)]))
    fleet.out(f"  topology recorded: primary {target}")
    repoint_apps(fleet, started)
    as_replica(fleet, old, target)
    follow_new_primary(fleet, target, others)
    settle(fleet)
    fleet.out(f"done in {time.monotonic() - started:.1f}s")
    return target


def as_replica(fleet: MariaFleet, old: str, primary: str) -> None:
    """Make a cleanly stopped-writing old primary replicate from ``primary`` from its own last GTID (the
    password goes on standard input, not the command line). Whether the connection uses TLS is the replica
    role's to say: it converges right after."""
    v = fleet.project.setup(old, None).vars
    sql = (f"STOP SLAVE; RESET SLAVE ALL; SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos; "
           f"CHANGE MASTER TO MASTER_HOST = '{fleet.address(primary)}', MASTER_PORT = {v['mariadb_port']}, "
           f"MASTER_USER = '{v['mariadb_replication_user']}', MASTER_PASSWORD = "
           f"'{v['mariadb_replication_password']}', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 5; "
           "START SLAVE;")
    fleet.host(old).run(f"mariadb --batch && touch {shlex.quote(SEEDED)}", stdin=sql)
    fleet.out(f"  {old}: replicates from {primary} by GTID")


def rejoin(fleet: MariaFleet, name: str) -> None:
    """Make a fenced old primary (or a broken replica) a replica of the current primary: it is seeded afresh
    from the primary (a consistent copy, then GTID), since it may hold transactions nobody else has."""
    started = time.monotonic()
    primary = fleet.primary
    if name == primary:
        raise FabstackError(f"{name} is the current primary", key="--host")
    host = fleet.host(name)
    if not host.reachable:
        raise FabstackError(f"cannot rejoin: {host.error}", host=name)
    host.wait_until_booted()  # an old primary that was just powered back on may still be starting its server
    host.run(f"rm -f {shlex.quote(SEEDED)}")
    topology = fleet.topology
    fleet.record(Topology(primary=topology.primary or primary, fenced=[h for h in topology.fenced if h != name]))
    fleet.out(f"  {name}: no longer fenced; seeding it from {primary}")
    settle(fleet)  # the replica role seeds it; every other host follows the topology
    state = fleet.state(name)
    fleet.out(f"  {name}: {state.role}, IO {state.io or '-'}, SQL {state.sql or '-'}, from "
              f"{state.master or '-'} at {state.position or '-'}")
    if state.role != "replica" or state.io != "Yes" or state.sql != "Yes":
        reason = state.error or state.note or "see `inv failover status`"
        raise FabstackError(f"rejoined but not replicating from {primary}: {reason}", host=name)
    fleet.out(f"rejoin done in {time.monotonic() - started:.1f}s")
