"""Chaos benchmark on the sandbox: kill the primary's container under a write load and promote the replica, in
synchronous and asynchronous mode; then a planned switchover under HTTP load. Prints RTO (kill -> first write
acknowledged through PgBouncer), the promote command's duration and the time from its start to the first
acknowledged write, acknowledged writes lost (against the replay lag measured before the kill), and failed HTTP
requests during the switchover. Asserts nothing.

``--tier mariadb`` does the same for the MariaDB tier (inventory/mariadb.yml): a kill and a switchover under a
write load from a client that writes to whichever host of the tier takes writes; lag before the kill is in
transactions (GTID), replication being asynchronous.

``--tier patroni`` runs PostgreSQL under Patroni (inventory/patroni.yml, synchronous mode): the leader's container
is killed ``--kills N`` times in a row (10 by default) under a write load through the apps' DSN, with nobody
typing anything; each kill prints the seconds to the first acknowledged write after it, writes lost, the new
leader, and the seconds until the old leader, started again, streams from it by itself.

All traffic goes to sandbox addresses; the writer and the HTTP probe are bounded in count and time.
Usage: .venv/bin/python benchmarks/failover.py [--tier mariadb | --tier patroni [--kills N]]
"""

from __future__ import annotations

import subprocess
import sys
import time

from common import REPO, quiet_deploy, sandbox_up

from fabstack.tiers.env import open_fleet
from fabstack.tiers.mariadb import failover as mf
from fabstack.tiers.postgresql import failover as fo
from fabstack.tiers.postgresql.sql import sql
from tests.integration.chaos import HttpProbe, Writer, probe_ids, reset_probe_table
from tests.integration.mariadbchaos import ENV as MARIADB_ENV
from tests.integration.mariadbchaos import MariaWriter, Probe, tier_addresses
from tests.integration.patronichaos import ENV as PATRONI_ENV
from tests.integration.patronichaos import kill_the_leader


def fleet() -> fo.PgFleet:
    """The env's db fleet, quiet."""
    return open_fleet(REPO, "sandbox", "postgresql", out=lambda _: None)  # type: ignore[return-value]


def with_fleet(action):  # noqa: ANN001, ANN201 - a small local helper
    """Run ``action(fleet)`` and close the fleet."""
    f = fleet()
    try:
        return action(f)
    finally:
        f.close()


def primary_and_lag() -> tuple[str, int]:
    """The primary and the replicas' replay lag in bytes as the primary sees it."""
    states = with_fleet(lambda f: {h: f.state(h) for h in f.db_hosts})
    primary = next(h for h, s in states.items() if s.role == "primary")
    lag = with_fleet(lambda f: sql(f.host(primary),
        "select coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) from pg_stat_replication"))
    return primary, int(float(lag or 0))


def stop_after_writes_resume(writer: Writer, since: float) -> float | None:
    """Wait (at most 10 s) for the first write acknowledged after ``since``, a second more, then stop the writer;
    returns when writes resumed (monotonic clock), or None."""
    for _ in range(200):
        if writer.first_ack_after(since):
            break
        time.sleep(0.05)
    time.sleep(1)
    writer.stop()
    return writer.first_ack_after(since)


def kill_cycle(mode: str) -> dict[str, float]:
    """One failover under load: kill, promote --force, restart and rejoin the old primary."""
    quiet_deploy(limit="db", roles="postgresql", overrides=[f"postgresql_synchronous={mode == 'sync'}"])
    reset_probe_table()
    writer = Writer(max_seconds=90).start()
    time.sleep(3)
    old, lag = primary_and_lag()
    killed = time.monotonic()
    subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True)
    started = time.monotonic()
    with_fleet(lambda f: fo.promote(f, None, force=True, check=False))
    took = time.monotonic() - started
    recovered = stop_after_writes_resume(writer, killed)
    lost = len(set(writer.acked) - probe_ids())
    subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True)
    time.sleep(5)
    with_fleet(lambda f: fo.rejoin(f, old))
    resumed = writer.first_ack_after(started)
    return {"acked": len(writer.acked), "lost": lost, "lag_bytes_before_kill": lag, "command_s": took,
            "rto_s": (recovered - killed) if recovered else float("nan"),
            "writes_resumed_after_command_start_s": (resumed - started) if resumed else float("nan")}


def switchover_cycle() -> dict[str, float]:
    """A planned switchover under write and HTTP load."""
    reset_probe_table()
    writer, http = Writer(max_seconds=90).start(), HttpProbe(max_seconds=90).start()
    time.sleep(3)
    started = time.monotonic()
    with_fleet(lambda f: fo.switchover(f, None, check=False))
    took = time.monotonic() - started
    time.sleep(2)
    writer.stop()
    http.stop()
    return {"acked": len(writer.acked), "lost": len(set(writer.acked) - probe_ids()), "command_s": took,
            "http_ok": http.ok, "http_failed": http.failed}


def with_maria_fleet(action):  # noqa: ANN001, ANN201 - a small local helper
    """Run ``action(fleet)`` on the MariaDB tier's fleet and close it."""
    f = open_fleet(REPO, MARIADB_ENV, "mariadb", out=lambda _: None)
    try:
        return action(f)
    finally:
        f.close()


def maria_primary_and_lag() -> tuple[str, int]:
    """The MariaDB primary, and how many of its transactions the most advanced replica has not received."""
    def ask(f: mf.MariaFleet) -> tuple[str, int]:
        states = f.states(f.db_hosts)
        primary = next(s for s in states.values() if s.role == "primary")
        lags = [mf.missing(s.received_pos or s.position, primary.binlog_pos) for s in states.values()
                if s.role == "replica"]
        return primary.name, min(lags, default=0)
    return with_maria_fleet(ask)


def maria_cycle(kill: bool) -> dict[str, float]:
    """A MariaDB failover after ``podman kill`` of the primary (then its rejoin), or a planned switchover, under a
    write load."""
    primary, _ = maria_primary_and_lag()
    probe = Probe(primary).create()
    writer = MariaWriter(max_seconds=90, probe=probe, addresses=tier_addresses()).start()
    time.sleep(3)
    old, lag = maria_primary_and_lag()
    if kill:
        subprocess.run(["podman", "kill", f"fabstack-{old}"], check=True, capture_output=True)
    started = time.monotonic()
    new = with_maria_fleet(lambda f: (mf.promote(f, None, force=True, check=False) if kill
                                      else mf.switchover(f, None, check=False)))
    took = time.monotonic() - started
    resumed = stop_after_writes_resume(writer, started)
    present = probe.ids(with_maria_fleet(lambda f: f.address(new)))
    if kill:
        subprocess.run(["podman", "start", f"fabstack-{old}"], check=True, capture_output=True)
        time.sleep(5)
        with_maria_fleet(lambda f: mf.rejoin(f, old))
    probe.drop(new)
    figures: dict[str, float] = {"acked": len(writer.acked), "lost": len(set(writer.acked) - present),
                                 "command_s": took, "longest_write_outage_s": writer.longest_outage(),
                                 "writes_resumed_after_command_start_s": (resumed - started) if resumed
                                 else float("nan")}
    if kill:
        figures["lag_transactions_before_kill"] = lag
    return figures


def patroni_kills(count: int) -> dict[str, dict[str, float | str]]:
    """Kill the leader ``count`` times in a row; each one's figures, then the worst and the total lost."""
    results: dict[str, dict[str, float | str]] = {}
    for number in range(1, count + 1):
        kill = kill_the_leader()
        results[f"kill {number}"] = {"killed": kill.old, "writes back after s": kill.resumed, "acked": kill.acked,
                                     "lost": kill.lost, "leader": kill.new, "old streams again after s": kill.back,
                                     "writer left unanswered": kill.stranded}
        print(f"kill {number}: {results[f'kill {number}']}", flush=True)
    resumed = [float(r["writes back after s"]) for r in results.values()]
    results["all"] = {"kills": count, "writes back: best s": min(resumed), "median s": sorted(resumed)[count // 2],
                      "worst s": max(resumed), "lost": sum(int(r["lost"]) for r in results.values()),
                      "writers left unanswered": sum(bool(r["writer left unanswered"]) for r in results.values())}
    return results


def main() -> None:
    """Run the scenarios of the tier asked for and print their figures."""
    tier = sys.argv[sys.argv.index("--tier") + 1] if "--tier" in sys.argv else "postgresql"
    if tier == "patroni":
        sandbox_up(env=PATRONI_ENV)
        quiet_deploy(env=PATRONI_ENV)
        kills = int(sys.argv[sys.argv.index("--kills") + 1]) if "--kills" in sys.argv else 10
        results = patroni_kills(kills)
    elif tier == "mariadb":
        sandbox_up(env=MARIADB_ENV)
        quiet_deploy(env=MARIADB_ENV)
        results = {"failover (kill)": maria_cycle(kill=True), "switchover": maria_cycle(kill=False)}
    else:
        sandbox_up()
        quiet_deploy()
        results = {"sync failover": kill_cycle("sync"), "async failover": kill_cycle("async"),
                   "switchover": switchover_cycle()}
        quiet_deploy(limit="db", roles="postgresql")
    for name, figures in results.items():
        shown = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
        print(f"{name:<16}{shown}")


if __name__ == "__main__":
    main()
