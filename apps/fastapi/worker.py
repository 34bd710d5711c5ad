"""Queue worker for the FastAPI app (run by Supervisor): jobs from Redis into PostgreSQL via PgBouncer (rw).

Exits after a bounded number of jobs or seconds so Supervisor restarts it fresh.
"""

from __future__ import annotations

import json
import time

import psycopg
import redis
from settings import REVISION, load_settings


def main() -> None:
    """Consume ``jobs:py`` and record each job once."""
    settings = load_settings()
    queue = redis.Redis(host=settings["REDIS_HOST"], port=int(settings["REDIS_PORT"]),
                        username=settings["REDIS_USER"], password=settings["REDIS_PASSWORD"])
    deadline = time.monotonic() + 3600
    handled = 0
    with psycopg.connect(settings["DB_RW_DSN"], prepare_threshold=None, autocommit=True) as conn:
        while handled < 10000 and time.monotonic() < deadline:
            popped = queue.brpop(["jobs:py"], timeout=5)
            if popped is None:
                continue
            job = json.loads(popped[1])
            conn.execute("insert into jobs_done (job_id, kind, payload, revision) values (%s, %s, %s, %s) "
                         "on conflict (job_id) do nothing", (job["id"], job["kind"], job["payload"], REVISION))
            handled += 1


if __name__ == "__main__":
    main()
