"""Open 5,000 client connections through the sandbox's PgBouncer and run a query on each: connection errors,
the most server connections PgBouncer used, and timings. Traffic goes only to the PgBouncer's sandbox address;
every step is bounded in count and time.

Usage: .venv/bin/python benchmarks/pgbouncer_clients.py [--clients 5000] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import psycopg
from common import REPO, quiet_deploy, sandbox_up

from fabstack.tiers.env import load_env

DEADLINE_SECONDS = 240


async def admin_pools(dsn: str) -> tuple[int, int, int]:
    """(client connections active + waiting, server connections in use or idle, max wait seconds) from SHOW POOLS."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute("SHOW POOLS")
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]
    clients = sum(r["cl_active"] + r["cl_waiting"] for r in rows)
    servers = sum(r["sv_active"] + r["sv_idle"] + r["sv_used"] for r in rows)
    return clients, servers, max((r["maxwait"] for r in rows), default=0)


async def run(app_dsn: str, admin_dsn: str, clients: int, concurrency: int) -> dict[str, float]:
    """Open ``clients`` connections (``concurrency`` handshakes at once), query on all, sample PgBouncer, close."""
    gate = asyncio.Semaphore(concurrency)
    errors: list[str] = []
    connections: list[psycopg.AsyncConnection] = []

    async def open_one() -> None:
        async with gate:
            try:
                connections.append(await psycopg.AsyncConnection.connect(app_dsn, autocommit=True,
                                                                         prepare_threshold=None, connect_timeout=30))
            except psycopg.Error as exc:
                errors.append(str(exc).splitlines()[0])

    started = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(clients)))
    opened = time.monotonic() - started
    peak_clients, _, _ = await admin_pools(admin_dsn)

    query_errors = 0
    samples: list[tuple[int, int, int]] = []

    async def query(conn: psycopg.AsyncConnection) -> None:
        nonlocal query_errors
        try:
            await conn.execute("select pg_sleep(0.01)")
        except psycopg.Error:
            query_errors += 1

    async def sampler(stop: asyncio.Event) -> None:
        while not stop.is_set():
            samples.append(await admin_pools(admin_dsn))
            await asyncio.sleep(0.2)

    stop = asyncio.Event()
    sampling = asyncio.create_task(sampler(stop))
    started = time.monotonic()
    await asyncio.gather(*(query(c) for c in connections))
    queried = time.monotonic() - started
    stop.set()
    await sampling
    await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
    return {"opened": len(connections), "connect_errors": len(errors), "open_seconds": opened,
            "clients_seen_by_pgbouncer": peak_clients, "query_seconds": queried, "query_errors": query_errors,
            "max_server_connections": max((s[1] for s in samples), default=0),
            "max_wait_seconds": max((s[2] for s in samples), default=0), "first_error": errors[0] if errors else ""}


def main() -> None:
    """Run the benchmark against the sandbox and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    sandbox_up()
    quiet_deploy()
    project = load_env(REPO, "sandbox")
    bouncer = project.setup(project.inventory.select("pgbouncer")[0], None).vars
    address = bouncer["ansible_host"]
    port = bouncer["pgbouncer_listen_port"]
    app_dsn = (f"host={address} port={port} dbname={bouncer['pgbouncer_rw_name']} user=app "
               f"password={bouncer['postgresql_app_password']}")
    admin_dsn = (f"host={address} port={port} dbname=pgbouncer user={bouncer['pgbouncer_admin_user']} "
                 f"password={bouncer['pgbouncer_admin_password']}")
    figures = asyncio.run(asyncio.wait_for(run(app_dsn, admin_dsn, args.clients, args.concurrency),
                                           DEADLINE_SECONDS))
    pool = bouncer["pgbouncer_default_pool_size"] + bouncer["pgbouncer_reserve_pool_size"]
    print(f"PgBouncer {address}:{port}: {args.clients} clients, {args.concurrency} handshakes at once, "
          f"pool {pool} (default + reserve), max_client_conn {bouncer['pgbouncer_max_client_conn']}")
    for key, value in figures.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        if key == "first_error" and not value:
            continue
        print(f"{key:<28}{project.masker(shown):>12}" if key != "first_error" else f"{key}: {project.masker(shown)}")


if __name__ == "__main__":
    main()
