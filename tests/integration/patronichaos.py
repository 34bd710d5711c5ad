"""Chaos helpers for PostgreSQL under Patroni (inventory/patroni.yml), shared by tests/integration/test_patroni.py
and benchmarks/failover.py: who the cluster says leads, and killing the leader's container under a bounded write
load through the apps' DSN (PgBouncer beside HAProxy). All traffic goes to the env's sandbox addresses."""

from __future__ import annotations

import functools
import json
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from fabstack.engine.tls import ca_certificate
from fabstack.stack.clustertls import CA_SETTING
from fabstack.tiers.env import load_env
from tests.conftest import REPO
from tests.integration.chaos import Writer, pgbouncer_dsn, probe_ids, reset_probe_table

ENV = "patroni"


def rest_urls() -> dict[str, str]:
    """Each db host's Patroni REST base URL (HTTPS)."""
    project = load_env(REPO, ENV)
    urls = {}
    for name in project.inventory.select("patroni"):
        v = project.setup(name, None).vars
        urls[name] = f"https://{v['ansible_host']}:{v['patroni_rest_port']}"
    return urls


@functools.cache
def trusted() -> ssl.SSLContext:
    """TLS that trusts the env's cluster CA alone (the REST API's certificates come from it)."""
    project = load_env(REPO, ENV)
    member = project.inventory.select("etcd")[0]
    return ssl.create_default_context(cadata=ca_certificate(project.setup(member, None).vars[CA_SETTING]))


def rest(url: str) -> Any:
    """The JSON a Patroni REST URL answers (bounded wait)."""
    with urllib.request.urlopen(url, timeout=2, context=trusted()) as answer:
        return json.load(answer)


def members(via: str = "") -> dict[str, dict]:
    """Name -> member as the cluster says, asked of one member (``via``) or of whichever answers first."""
    urls = rest_urls()
    for url in ([urls[via]] if via else urls.values()):
        try:
            return {m["name"]: m for m in rest(f"{url}/cluster")["members"]}
        except OSError:
            continue
    return {}


def leader(via: str = "") -> str:
    """The member holding the lease ("" while nobody does), asked as ``members`` is."""
    return next((name for name, m in members(via).items() if m["role"] == "leader"), "")


def streaming(name: str) -> bool:
    """Whether a member follows the leader: running as its standby on its timeline, with a known lag (a former
    leader just back still runs on its old timeline until Patroni has rewound it)."""
    found = members()
    member, lead = found.get(name, {}), next((m for m in found.values() if m["role"] == "leader"), {})
    return member.get("role") in ("replica", "sync_standby") and member.get("state") in ("streaming", "running") \
        and member.get("timeline") == lead.get("timeline") and isinstance(member.get("lag"), int)


def synchronous() -> bool:
    """Whether the cluster runs in synchronous mode (its settings in etcd, asked of a member)."""
    for url in rest_urls().values():
        try:
            return bool(rest(f"{url}/config").get("synchronous_mode"))
        except OSError:
            continue
    return False


def ready_for_a_failover() -> bool:
    """A leader, and every other member a standby it may fail over to: in synchronous mode only the synchronous
    standby may be promoted, and a member that has just come back is one a few seconds after it streams."""
    found = members()
    others = [m for m in found.values() if m["role"] != "leader"]
    wanted = ("sync_standby",) if synchronous() else ("replica", "sync_standby")
    return len(found) - len(others) == 1 and bool(others) and all(
        m["role"] in wanted and m.get("state") in ("streaming", "running") for m in others)


def route_writable() -> bool:
    """Whether a new client of the apps' DSN reaches a server out of recovery."""
    try:
        with psycopg.connect(pgbouncer_dsn(env=ENV), autocommit=True, prepare_threshold=None) as conn:
            row = conn.execute("select pg_is_in_recovery()").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] is False


def fresh_probe_table() -> bool:
    """Whether an empty probe table could be made through the apps' DSN."""
    try:
        reset_probe_table(ENV)
    except psycopg.Error:
        return False
    return True


def wait_for(what: str, ready: Callable[[], bool], seconds: float) -> float:
    """Wait (bounded) until ``ready()``; return the seconds it took, fail naming ``what``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if ready():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"{what}: not after {seconds}s; members: {members()}")


@dataclass
class Kill:
    """One kill of the leader: who, seconds from the kill to the first acknowledged write, writes acknowledged
    and lost, who leads after, seconds from the old leader's restart until it streams again, and whether the
    writer's own connection was left without an answer."""

    old: str
    resumed: float
    acked: int
    lost: int
    new: str
    back: float
    # the writer's own connection never got an answer again (a new client did)
    stranded: bool = False


def kill_the_leader(writer_seconds: float = 120) -> Kill:
    """Kill the leader's container while a writer writes through PgBouncer; writes resume by themselves. Then
    start it again and wait until it streams from the new leader, by itself."""
    wait_for("a cluster ready for a failover", ready_for_a_failover, 60)
    wait_for("the apps' DSN taking writes (PgBouncer holds a failed login for a moment)", fresh_probe_table, 30)
    old = leader()
    writer = Writer(env=ENV, max_seconds=writer_seconds).start()
    try:
        wait_for("the writer's first writes", lambda: len(writer.acked) > 20, 30)
        killed = time.monotonic()
        subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True, timeout=60)
        # writes are back when the writer's are, or when a new client of the apps' DSN reaches a writable leader:
        # a write already sent may stay unanswered (seen in 2 of 19 kills, the server had committed it), which
        # is reported as stranded, not as writes never resuming
        fresh: list[float] = []
        wait_for("writes resuming after the kill", lambda: writer.first_ack_after(killed) is not None or (
            route_writable() and not fresh.append(time.monotonic())), 60)
        back = writer.first_ack_after(killed)
        resumed = (back if back is not None else fresh[0]) - killed
        if back is None:
            time.sleep(5)  # a last chance for the writer's own connection
        stranded = writer.first_ack_after(killed) is None
        time.sleep(1)
    finally:
        writer.stop()
    lost = len(set(writer.acked) - probe_ids(ENV))
    new = leader()
    try:
        subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True, timeout=60)
        back_in = wait_for(f"{old} streaming again as a replica", lambda: streaming(old), 120)
    finally:
        subprocess.run(["podman", "start", f"fabstack-{old}"], capture_output=True, timeout=60)
    return Kill(old, resumed, len(writer.acked), lost, new, back_in, stranded)


def env_addresses() -> dict[str, str]:
    """Every host of the env, by name, with its address."""
    project = load_env(REPO, ENV)
    return {name: project.setup(name, None).vars["ansible_host"] for name in project.inventory.hosts}


# The nftables table a test adds on a host to cut it off; removing it lifts the cut.
CUT_TABLE = "fabstack_test_cut"


def cut_off(name: str) -> None:
    """Drop every packet between a host and the env's other hosts (etcd, its peer, HAProxy), by nftables on that
    host; this machine still reaches it, through podman too."""
    others = ", ".join(address for host, address in env_addresses().items() if host != name)
    chain = "type filter hook {} priority -50; policy accept; ip {} {{ " + others + " }} drop;"
    rules = (f"table inet {CUT_TABLE} {{\n"
             f"  chain incoming {{ {chain.format('input', 'saddr')} }}\n"
             f"  chain outgoing {{ {chain.format('output', 'daddr')} }}\n"
             "}\n")
    subprocess.run(["podman", "exec", "-i", f"fabstack-{name}", "nft", "-f", "-"], input=rules, text=True,
                   check=True, capture_output=True, timeout=30)


def reconnect(name: str) -> None:
    """Lift a cut made by ``cut_off`` (nothing when there is none)."""
    subprocess.run(["podman", "exec", f"fabstack-{name}", "nft", "delete", "table", "inet", CUT_TABLE],
                   capture_output=True, timeout=30)


def local_sql(name: str, query: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A query run on a db host's own server through its socket (podman, not the network), as postgres."""
    return subprocess.run(["podman", "exec", f"fabstack-{name}", "runuser", "-u", "postgres", "--", "psql",
                           "-X", "-qAt", "-d", "app", "-c", query], capture_output=True, text=True, timeout=timeout)


def writes_acknowledged_locally(name: str, table: str, seconds: int) -> list[float]:
    """Write a marker into ``table`` on a host's own server every 0.2 s for ``seconds`` seconds, acknowledged
    without waiting for a standby (synchronous_commit=local); the wall-clock times by which each acknowledged one
    had returned (the host's clock is this machine's: containers share the kernel)."""
    loop = (f"end=$(( $(date +%s) + {int(seconds)} )); while [ $(date +%s) -lt $end ]; do "
            f"if runuser -u postgres -- psql -X -qAt -d app -c \"insert into {table} (side) values ('old')\" "
            ">/dev/null 2>&1; then date +%s.%N; fi; sleep 0.2; done")
    done = subprocess.run(["podman", "exec", "-e", "PGOPTIONS=-c synchronous_commit=local -c statement_timeout=2000",
                           f"fabstack-{name}", "sh", "-c", loop], capture_output=True, text=True,
                          timeout=seconds + 60)
    return [float(line) for line in done.stdout.split()]


def etcd_members_away_from(name: str) -> list[str]:
    """The etcd members on hosts other than ``name``: those on hosts Patroni does not run first."""
    project = load_env(REPO, ENV)
    db = set(project.inventory.select("patroni"))
    return sorted((m for m in project.inventory.select("etcd") if m != name), key=lambda m: (m in db, m))


def stop_etcd(name: str) -> None:
    """Stop the etcd member on a host (its data stays)."""
    subprocess.run(["podman", "exec", f"fabstack-{name}", "systemctl", "stop", "etcd"], check=True,
                   capture_output=True, timeout=60)


def start_etcd(name: str) -> None:
    """Start the etcd member on a host again."""
    subprocess.run(["podman", "exec", f"fabstack-{name}", "systemctl", "start", "etcd"], capture_output=True,
                   timeout=120)


@dataclass
class Marks:
    """Rows written through the apps' DSN by a bounded background loop: each id's wall-clock times just before it
    was sent and when its commit was acknowledged."""

    sent: dict[int, float]
    acked: dict[int, float]
    stop: threading.Event
    thread: threading.Thread

    def finish(self) -> None:
        """Stop writing and wait for the loop to end."""
        self.stop.set()
        self.thread.join(timeout=30)


def write_marks(table: str, max_seconds: float, interval: float = 0.1) -> Marks:
    """Start inserting ids into ``table`` (made afresh) every ``interval`` seconds, for at most ``max_seconds``."""
    with psycopg.connect(pgbouncer_dsn(env=ENV), autocommit=True, prepare_threshold=None) as conn:
        conn.execute(f"drop table if exists {table}")
        conn.execute(f"create table {table} (id bigint primary key)")
    marks = Marks({}, {}, threading.Event(), threading.Thread())

    def loop() -> None:
        deadline = time.monotonic() + max_seconds
        with psycopg.connect(pgbouncer_dsn(env=ENV), autocommit=True, prepare_threshold=None) as conn:
            next_id = 1
            while not marks.stop.is_set() and time.monotonic() < deadline:
                marks.sent[next_id] = time.time()
                conn.execute(f"insert into {table} (id) values (%s)", (next_id,))
                marks.acked[next_id] = time.time()
                next_id += 1
                time.sleep(interval)

    marks.thread = threading.Thread(target=loop, daemon=True)
    marks.thread.start()
    return marks


def wal_file_now() -> str:
    """The WAL file the leader writes now (its name orders the archive)."""
    with psycopg.connect(pgbouncer_dsn(env=ENV), autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute("select pg_walfile_name(pg_current_wal_lsn())").fetchone()
    assert row is not None
    return str(row[0])


def archived(wal_file: str) -> bool:
    """Whether the leader has archived ``wal_file`` (or a later one)."""
    with psycopg.connect(pgbouncer_dsn(env=ENV), autocommit=True, prepare_threshold=None) as conn:
        row = conn.execute("select coalesce(last_archived_wal, '') from pg_stat_archiver").fetchone()
    return row is not None and str(row[0])[:24] >= wal_file


def destroy(*names: str) -> None:
    """Kill hosts at once (no clean shutdown: nothing more is archived or handed over), then remove their
    containers and volumes: their disks are gone."""
    containers = [f"fabstack-{name}" for name in names]
    subprocess.run(["podman", "kill", *containers], check=True, capture_output=True, timeout=60)
    subprocess.run(["podman", "rm", "--force", "--volumes", *containers], check=True, capture_output=True,
                   timeout=120)
