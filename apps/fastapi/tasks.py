"""Celery tasks of the FastAPI app (workers run by Supervisor, one program per queue: high, default, low).

The broker is Redis (as the app's ACL user). A task is acknowledged when a worker takes it and a worker stopped by a
release finishes the task it is running first (Celery's warm shutdown), so no task runs twice and none is lost.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import psycopg
from celery import Celery
from settings import REVISION, load_settings

SETTINGS = load_settings()
QUEUES = ("high", "default", "low")
broker = (f"redis://{quote(SETTINGS['REDIS_USER'], safe='')}:{quote(SETTINGS['REDIS_PASSWORD'], safe='')}@"
          f"{SETTINGS['REDIS_HOST']}:{SETTINGS['REDIS_PORT']}/1")
celery = Celery("fastapi", broker=broker)
celery.conf.update(task_default_queue="default", worker_prefetch_multiplier=1, broker_connection_retry_on_startup=True,
                   task_serializer="json", accept_content=["json"])


def _write(sql: str, args: tuple) -> None:
    with psycopg.connect(SETTINGS["DB_RW_DSN"], prepare_threshold=None, autocommit=True) as conn:
        conn.execute(sql, args)


@celery.task(name="record_job")
def record_job(job_id: str, payload: str) -> None:
    """Record a job once in jobs_done, with the release that ran it."""
    _write("insert into jobs_done (job_id, kind, payload, revision) values (%s, 'fastapi', %s, %s) "
           "on conflict (job_id) do nothing", (job_id, payload, REVISION))


@celery.task(name="slow_job", bind=True)
def slow_job(self: object, job_id: str, seconds: float) -> None:
    """A long task: every run of it is a row in task_runs (a task that ran twice shows twice)."""
    _write("insert into task_runs (task_id, revision, state) values (%s, %s, 'started')", (job_id, REVISION))
    time.sleep(min(float(seconds), 120))
    _write("insert into task_runs (task_id, revision, state) values (%s, %s, 'finished')", (job_id, REVISION))
