"""The worker process: short jobs on the default queue with the housekeeping schedule, and
object-detection jobs on the `detect` queue (`VAS_WORKER_QUEUES`; `vas detector` serves
`detect` alone)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from redis.asyncio import Redis

from core.notify import Notifier
from core.settings import Settings
from core.workers import WorkerRegistry
from jobs.broker import DEFAULT_QUEUE
from jobs.client import JobClient
from jobs.context import JobContext
from jobs.housekeeping import run_housekeeping
from jobs.process import cancel_all, serve

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def run_worker(settings: Settings, queues: tuple[str, ...] | None = None) -> None:
    """Serve `queues` (default: `VAS_WORKER_QUEUES`) until signalled; the housekeeping
    schedule runs where the default queue is served."""
    queues = queues or settings.media.worker_queues
    assert settings.redis.url is not None
    redis = Redis.from_url(settings.redis.url)
    notifier = Notifier(settings.redis.url, settings.redis.namespace)
    worker_id = new_worker_id()
    tasks: list[asyncio.Task[None]] = []

    async def started(ctx: JobContext) -> None:
        if DEFAULT_QUEUE not in queues:
            return
        jobs: JobClient = ctx.extras["jobs"]
        tasks.append(asyncio.create_task(run_housekeeping(
            redis, settings.redis.namespace, jobs, settings.media.job_stale_s,
            worker_id=worker_id, notifier=notifier, lease_s=settings.media.lease_s)))
        logger.info("worker %s started", worker_id)

    async def stopping(ctx: JobContext) -> None:
        await cancel_all(tasks)
        detection = ctx.extras.get("detection")
        if detection is not None:
            detection.close()
        await WorkerRegistry(redis, settings.redis.namespace).leave(worker_id)
        notifier.close()
        await redis.aclose()

    # Idle consumers block on their queues' wake-up lists (jobs.broker): a job is taken at
    # once, and an idle worker looks again only once a second.
    await serve(settings, set(queues), worker_threads=4, poll_ms=1000,
                on_started=started, on_stopping=stopping)
