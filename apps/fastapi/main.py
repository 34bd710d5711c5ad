"""The demo FastAPI app: rows through PgBouncer (rw and ro entries), a value from Redis, jobs onto a queue."""

from __future__ import annotations

import asyncio
import secrets
import socket

import humanize
import psycopg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Request, Response
from psycopg_pool import AsyncConnectionPool
from settings import RELEASED_AT, REVISION, load_settings

import tasks

SETTINGS = load_settings()
app = FastAPI(title="fabstack demo")


@app.middleware("http")
async def revision_header(request: Request, call_next: object) -> Response:
    """Every response names the release that served it (fabstack's health check waits for it)."""
    response = await call_next(request)  # type: ignore[operator]
    response.headers["X-App-Revision"] = REVISION[:12]
    return response
redis_client = aioredis.Redis(
    host=SETTINGS["REDIS_HOST"], port=int(SETTINGS["REDIS_PORT"]), username=SETTINGS["REDIS_USER"],
    password=SETTINGS["REDIS_PASSWORD"], decode_responses=True,
)
# Connections per worker and entry, kept open (no SCRAM handshake per request), as the budget counts them.
POOLS = {
    entry: AsyncConnectionPool(
        SETTINGS[f"DB_{entry.upper()}_DSN"], min_size=1, max_size=int(SETTINGS["DB_POOL_SIZE"]), open=False,
        # PgBouncer's transaction pooling cannot keep server-side prepared statements
        kwargs={"prepare_threshold": None, "autocommit": True},
    )
    for entry in ("rw", "ro")
}


@app.on_event("startup")
async def open_pools() -> None:
    """Open the connection pools once the worker's event loop runs."""
    await asyncio.gather(*(pool.open() for pool in POOLS.values()))


@app.on_event("shutdown")
async def close_pools() -> None:
    """Close the pools so the worker exits promptly on a restart."""
    await asyncio.gather(*(pool.close() for pool in POOLS.values()))
    await redis_client.close()


async def query(entry: str, sql: str, *args: object) -> list[tuple]:
    """Run one read-only query through PgBouncer's rw or ro entry.

    A failover makes PgBouncer drop its clients, so every pooled connection may be dead: on the first failure the
    pool checks its idle connections (discarding the dead ones) and the query (a read, safe to repeat) is tried
    once more on a live or fresh one.
    """
    try:
        return await _fetch(entry, sql, args)
    except psycopg.OperationalError:
        await POOLS[entry].check()
        return await _fetch(entry, sql, args)


async def _fetch(entry: str, sql: str, args: tuple) -> list[tuple]:
    async with POOLS[entry].connection() as conn:
        cursor = await conn.execute(sql, args)
        return await cursor.fetchall() if cursor.description else []


@app.get("/health")
async def health() -> dict:
    """Liveness."""
    return {"ok": True}


@app.get("/client")
async def client(request: Request) -> dict:
    """The request as the app sees it behind the load balancer: the scheme the client used and its address."""
    return {"scheme": request.url.scheme, "address": request.client.host if request.client else ""}


@app.get("/")
async def index() -> dict:
    """Rows read from the replica, the rw entry's role, and a cached Redis value."""
    cached = await redis_client.get("demo:py-greeting")
    if cached is None:
        cached = "cached by fastapi"
        await redis_client.setex("demo:py-greeting", 60, cached)
    rows = await query("ro", "select id, name from items order by id limit 5")
    standby = await query("rw", "select pg_is_in_recovery()")
    return {"app": "fastapi", "host": socket.gethostname(), "rows": [{"id": r[0], "name": r[1]} for r in rows],
            "redis": cached, "rw_is_standby": standby[0][0], "revision": REVISION,
            "released": humanize.naturaltime(RELEASED_AT)}


@app.get("/enqueue")
async def enqueue(payload: str = "", priority: str = "default", seconds: float = 0) -> dict:
    """Send a Celery task to a queue (high, default or low); ``seconds`` makes it a long one."""
    queue = priority if priority in tasks.QUEUES else "default"
    job_id = secrets.token_hex(8)
    if seconds > 0:
        tasks.slow_job.apply_async((job_id, seconds), queue=queue, task_id=job_id)
    else:
        tasks.record_job.apply_async((job_id, payload), queue=queue, task_id=job_id)
    return {"queued": job_id, "queue": queue}


@app.get("/job")
async def job(id: str) -> dict:  # noqa: A002 - the query parameter's public name
    """A processed job as the replica sees it."""
    rows = await query("ro", "select job_id, kind, payload, revision from jobs_done where job_id = %s", id)
    if not rows:
        raise HTTPException(status_code=404, detail="not processed yet")
    return {"job": {"job_id": rows[0][0], "kind": rows[0][1], "payload": rows[0][2], "revision": rows[0][3]}}
