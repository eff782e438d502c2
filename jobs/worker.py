"""The worker process: short jobs on the default queue, plus the housekeeping schedule."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from core.settings import Settings
from jobs.broker import DEFAULT_QUEUE
from jobs.client import JobClient
from jobs.context import JobContext
from jobs.housekeeping import run_housekeeping
from jobs.process import cancel_all, serve


async def run_worker(settings: Settings) -> None:
    """Serve the default queue until signalled."""
    assert settings.redis.url is not None
    redis = Redis.from_url(settings.redis.url)
    tasks: list[asyncio.Task[None]] = []

    async def started(ctx: JobContext) -> None:
        jobs: JobClient = ctx.extras["jobs"]
        tasks.append(asyncio.create_task(
            run_housekeeping(redis, settings.redis.namespace, jobs, settings.media.job_stale_s)))

    async def stopping(ctx: JobContext) -> None:
        await cancel_all(tasks)
        await redis.aclose()

    await serve(settings, {DEFAULT_QUEUE}, worker_threads=4, poll_ms=200,
                on_started=started, on_stopping=stopping)
