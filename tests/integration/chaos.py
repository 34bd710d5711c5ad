"""Chaos helpers shared by the failover tests and benchmarks/failover.py: a writer that logs every acknowledged
id through PgBouncer, and HTTP probes through the LB. All traffic goes to sandbox addresses, bounded in count
and time."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import psycopg

from fabstack.tiers.env import load_env
from tests.conftest import REPO

PROBE_TABLE = "failover_probe"


def pgbouncer_dsn(database: str = "app", env: str = "sandbox") -> str:
    """The app's DSN through an env's PgBouncer (password from the env's generated secrets)."""
    project = load_env(REPO, env)
    bouncer = project.setup(project.inventory.select("pgbouncer")[0], None).vars
    return (f"host={bouncer['ansible_host']} port={bouncer['pgbouncer_listen_port']} dbname={database} user=app "
            f"password={bouncer['postgresql_app_password']} connect_timeout=3")


def reset_probe_table(env: str = "sandbox") -> None:
    """An empty probe table on the primary."""
    with psycopg.connect(pgbouncer_dsn(env=env), autocommit=True, prepare_threshold=None) as conn:
        conn.execute(f"drop table if exists {PROBE_TABLE}")
        conn.execute(f"create table {PROBE_TABLE} (id bigint primary key, at timestamptz not null default now())")


def probe_ids(env: str = "sandbox") -> set[int]:
    """Ids present on the current primary."""
    with psycopg.connect(pgbouncer_dsn(env=env), autocommit=True, prepare_threshold=None) as conn:
        return {row[0] for row in conn.execute(f"select id from {PROBE_TABLE}")}


@dataclass
class Loop:
    """A bounded loop in a background thread: ``start`` it, ``stop`` it; subclasses write ``_run``."""

    max_seconds: float = 180
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Loop:
        """Start the loop in a background thread."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def finish(self, seconds: float = 60) -> None:
        """Wait (bounded) for the loop to end by itself, at its own count or time limit."""
        if self._thread:
            self._thread.join(timeout=seconds)
        self.stop()

    def stop(self) -> None:
        """Stop and wait for the thread."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        raise NotImplementedError


@dataclass
class Writer(Loop):
    """Inserts sequential ids through PgBouncer, recording each acknowledged one and when writes failed."""

    max_ids: int = 200_000
    env: str = "sandbox"
    acked: list[int] = field(default_factory=list)
    errors: int = 0
    failing_since: float | None = None
    outages: list[tuple[float, float]] = field(default_factory=list)

    # (sent, acknowledged) of each write, monotonic clock
    timings: list[tuple[float, float]] = field(default_factory=list)

    def first_ack_after(self, moment: float) -> float | None:
        """When writes were acknowledged again after ``moment`` (monotonic clock), if they were: the end of an
        outage of failed writes, or a write held (a second or more, as PgBouncer holds a query until a server
        answers) that was acknowledged after it. A write merely in flight at ``moment`` does not count."""
        ends = [end for start, end in self.outages if end >= moment]
        ends += [done for sent, done in self.timings if done >= moment and done - sent >= 1.0]
        return min(ends, default=None)

    def acknowledged(self, written: int, sent: float | None = None) -> None:
        """Record an acknowledged write (and the end of an outage, if one was under way)."""
        self.acked.append(written)
        if sent is not None:
            self.timings.append((sent, time.monotonic()))
        if self.failing_since is not None:
            self.outages.append((self.failing_since, time.monotonic()))
            self.failing_since = None

    def failed(self) -> None:
        """Record a failed write (the start of an outage, if none was under way)."""
        self.errors += 1
        if self.failing_since is None:
            self.failing_since = time.monotonic()

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        conn = None
        next_id = 1
        dsn = pgbouncer_dsn(env=self.env)
        while not self._stop.is_set() and next_id <= self.max_ids and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
                sent = time.monotonic()
                conn.execute(f"insert into {PROBE_TABLE} (id) values (%s)", (next_id,))
                self.acknowledged(next_id, sent)
                next_id += 1
            except psycopg.Error as exc:
                self.failed()
                if "duplicate key" in str(exc):
                    next_id += 1  # it did commit before the connection broke: not acknowledged, not lost
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()


# The load balancer's address on the sandbox network, and its front door (plain HTTP only redirects there).
LB = "10.213.0.11"
LB_URL = f"https://{LB}/"


def sandbox_tls() -> ssl.SSLContext:
    """A client context that takes the sandbox LB's self-signed certificate (its own side is what tests check)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class HttpProbe(Loop):
    """GETs through the LB in a loop, counting failed requests (bounded in count and time)."""

    url: str = LB_URL
    max_requests: int = 100_000
    ok: int = 0
    failed: int = 0

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        context = sandbox_tls()
        while not self._stop.is_set() and self.ok + self.failed < self.max_requests and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=10, context=context) as response:
                    response.read()
                    self.ok += 1
            except (urllib.error.URLError, OSError):
                self.failed += 1
            time.sleep(0.05)  # about 15 requests a second: under the per-IP rate limit


class Load:
    """Requests through the load balancer from this machine, each on a new connection, bounded in count and time
    (about 30 a second: under the LB's per-client limit)."""

    def __init__(self, path: str, limit: int = 4000, seconds: float = 180) -> None:
        self.path, self.limit, self.seconds = path, limit, seconds
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.revisions: list[tuple[float, str]] = []
        # (seconds since the load began, latency in ms, failed: an error or a non-2xx), for the benchmarks' plots
        self.samples: list[tuple[float, float, bool]] = []
        self._began = time.monotonic()
        self._stop = threading.Event()
        self._tls = sandbox_tls()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(2)]

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < deadline and self.total < self.limit:
            conn = http.client.HTTPSConnection(LB, 443, timeout=10, context=self._tls)
            sent = time.monotonic()
            try:
                conn.request("GET", self.path, headers={"Connection": "close"})
                response = conn.getresponse()
                response.read()
                self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
                self.revisions.append((time.monotonic(), response.getheader("X-App-Revision") or ""))
                self.samples.append((sent - self._began, (time.monotonic() - sent) * 1000,
                                     not 200 <= response.status < 300))
            except OSError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self.samples.append((sent - self._began, (time.monotonic() - sent) * 1000, True))
            finally:
                conn.close()
            time.sleep(0.06)

    @property
    def total(self) -> int:
        """Requests answered or failed so far."""
        return sum(self.statuses.values()) + len(self.errors)

    @property
    def failed(self) -> int:
        """Non-2xx answers."""
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    def __enter__(self) -> Load:
        self._began = time.monotonic()
        for thread in self._threads:
            thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=20)
