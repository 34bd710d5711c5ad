#!/usr/bin/python3
"""PgBouncer's pools for Prometheus: reads the console (SHOW POOLS, DATABASES, STATS, CONFIG) with psql on each
scrape. Debian's prometheus-pgbouncer-exporter 1.7 predates the STATS columns of PgBouncer 1.8+ and fails at
start, so fabstack ships this small one. The console password comes in PGPASSWORD (from systemd)."""

from __future__ import annotations

import argparse
import csv
import io
import subprocess

from metrics_server import family, serve

# (console command, column, metric, type, help, labels)
COLUMNS = (
    ("POOLS", "cl_active", "pgbouncer_pools_client_active_connections", "gauge",
     "clients linked to a server connection", ("database", "user")),
    ("POOLS", "cl_waiting", "pgbouncer_pools_client_waiting_connections", "gauge",
     "clients that sent a query and wait for a server connection", ("database", "user")),
    ("POOLS", "sv_active", "pgbouncer_pools_server_active_connections", "gauge",
     "server connections linked to a client", ("database", "user")),
    ("POOLS", "sv_idle", "pgbouncer_pools_server_idle_connections", "gauge",
     "server connections idle and ready", ("database", "user")),
    ("POOLS", "maxwait", "pgbouncer_pools_client_maxwait_seconds", "gauge",
     "how long the oldest waiting client has waited", ("database", "user")),
    ("DATABASES", "pool_size", "pgbouncer_databases_pool_size", "gauge",
     "server connections the pool may open", ("name",)),
    ("DATABASES", "current_connections", "pgbouncer_databases_current_connections", "gauge",
     "server connections open for the database", ("name",)),
    ("STATS", "total_xact_count", "pgbouncer_stats_transactions_pooled_total", "counter",
     "transactions pooled", ("database",)),
    ("STATS", "total_wait_time", "pgbouncer_stats_client_wait_seconds_total", "counter",
     "seconds clients waited for a server (microseconds in the console)", ("database",)),
)
MICROSECONDS = {"total_wait_time"}


def console(args: argparse.Namespace, command: str) -> list[dict[str, str]]:
    """One SHOW command's rows, by column name."""
    out = subprocess.run(
        ["psql", "-X", "-A", "-F", "\t", "-P", "footer=off", "-h", args.host, "-p", str(args.port),
         "-U", args.user, "-d", "pgbouncer", "-c", f"SHOW {command}"],
        capture_output=True, text=True, timeout=args.timeout, check=True).stdout
    return list(csv.DictReader(io.StringIO(out), delimiter="\t", quoting=csv.QUOTE_NONE))


def render(args: argparse.Namespace) -> list[str]:
    """pgbouncer_up, the pools' clients and servers, the databases' sizes, the pooled totals, max_client_conn."""
    up = "1 when PgBouncer's console answered"
    try:
        tables = {command: console(args, command) for command in ("POOLS", "DATABASES", "STATS")}
        config = {row["key"]: row["value"] for row in console(args, "CONFIG")}
    except (OSError, subprocess.SubprocessError):
        return family("pgbouncer_up", "gauge", up, [({}, 0)])
    lines = family("pgbouncer_up", "gauge", up, [({}, 1)])
    for command, column, name, kind, text, labels in COLUMNS:
        rows = [row for row in tables[command] if column in row]
        scale = 1e-6 if column in MICROSECONDS else 1
        lines += family(name, kind, text, [({k: row[k] for k in labels}, float(row[column]) * scale)
                                           for row in rows])
    return lines + family("pgbouncer_config_max_client_connections", "gauge", "max_client_conn",
                          [({}, float(config.get("max_client_conn", 0)))])


def main() -> None:
    """Serve PgBouncer's metrics on the given address."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--host", default="/var/run/postgresql", help="PgBouncer's socket folder or address")
    parser.add_argument("--port", type=int, default=6432, help="PgBouncer's port")
    parser.add_argument("--user", required=True, help="a stats_users user of PgBouncer")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the console")
    args = parser.parse_args()
    serve(args.listen, lambda: render(args))


if __name__ == "__main__":
    main()
