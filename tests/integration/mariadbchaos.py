"""Chaos helpers for the MariaDB tier (inventory/mariadb.yml), shared by its tests and benchmarks/failover.py: a
probe account for this machine, and a writer that, like a client given every host of the tier (MariaDB
Connector/J's failover mode), writes to whichever host accepts writes and logs every acknowledged id. All
traffic goes to the tier's sandbox addresses, bounded in count and time."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import pymysql

from fabstack.tiers.env import load_env
from tests.conftest import REPO
from tests.integration.chaos import PROBE_TABLE, Writer
from tests.integration.conftest import in_host

ENV = "mariadb"
PROBE_USER = "fabstack_probe"
# ER_DUP_ENTRY: the id committed before the connection broke (not acknowledged, so not counted as lost)
DUPLICATE_KEY = 1062


def tier_addresses() -> list[str]:
    """Every host of the tier's address, in inventory order."""
    project = load_env(REPO, ENV)
    return [str(project.hostvars()[h]["ansible_host"]) for h in project.inventory.select("mariadb")]


def this_machine() -> str:
    """This machine's address on the tier's network (the inventory's admin source)."""
    project = load_env(REPO, ENV)
    return str(project.env_values()["firewall_admin_sources"][0]).split("/")[0]


@dataclass
class Probe:
    """An account on the tier for this machine, with the probe table; ``drop`` removes both."""

    primary: str
    password: str = field(default_factory=lambda: secrets.token_hex(12))

    def create(self) -> Probe:
        """The account (replicated to every replica) and an empty probe table."""
        who = f"'{PROBE_USER}'@'{this_machine()}'"
        done = in_host(self.primary, f"mariadb --batch -e \"CREATE OR REPLACE USER {who} IDENTIFIED BY "
                                     f"'{self.password}'; GRANT ALL ON app.* TO {who}; "
                                     f"DROP TABLE IF EXISTS app.{PROBE_TABLE}; CREATE TABLE app.{PROBE_TABLE} "
                                     "(id bigint primary key, at timestamp(6) not null default now(6))\"")
        assert done.returncode == 0, done.stderr
        return self

    def drop(self, primary: str) -> None:
        """Remove the account and the table (from whichever host is the primary now)."""
        in_host(primary, f"mariadb --batch -e \"DROP USER IF EXISTS '{PROBE_USER}'@'{this_machine()}'; "
                         f"DROP TABLE IF EXISTS app.{PROBE_TABLE}\"")

    def connect(self, address: str) -> pymysql.connections.Connection:
        """A connection to one host of the tier as the probe account."""
        return pymysql.connect(host=address, user=PROBE_USER, password=self.password, database="app",
                               autocommit=True, connect_timeout=1, read_timeout=3, write_timeout=3)

    def ids(self, address: str) -> set[int]:
        """Ids present on one host."""
        conn = self.connect(address)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"select id from {PROBE_TABLE}")
                return {row[0] for row in cursor.fetchall()}
        finally:
            conn.close()


@dataclass
class MariaWriter(Writer):
    """Inserts sequential ids into whichever host of the tier takes writes (a read_only replica refuses them:
    the writer moves on to the next host)."""

    probe: Probe | None = None
    addresses: list[str] = field(default_factory=list)

    def _run(self) -> None:
        assert self.probe is not None
        deadline = time.monotonic() + self.max_seconds
        conn, current, next_id = None, 0, 1
        while not self._stop.is_set() and next_id <= self.max_ids and time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = self.probe.connect(self.addresses[current])
                with conn.cursor() as cursor:
                    cursor.execute(f"insert into {PROBE_TABLE} (id) values (%s)", (next_id,))
                self.acknowledged(next_id)
                next_id += 1
            except pymysql.MySQLError as exc:
                self.failed()
                if exc.args and exc.args[0] == DUPLICATE_KEY:
                    next_id += 1
                if conn is not None:
                    conn.close()
                conn, current = None, (current + 1) % len(self.addresses)
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def longest_outage(self) -> float:
        """The longest time without an acknowledged write (seconds)."""
        return max((end - start for start, end in self.outages), default=0.0)
