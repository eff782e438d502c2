"""Periodic work of the worker process: retention, stale nodes, abandoned starts.

Every worker runs this loop; a Redis lock per task and period makes sure that only one of
them enqueues each run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from redis.asyncio import Redis

from core.captures import stale_jobs
from core.clock import utcnow
from core.errors import Conflict, MediaUnavailable
from core.stream_states import StreamState
from core.streams import StreamService, failure_fields
from jobs.client import JobClient

logger = logging.getLogger(__name__)

RETENTION_PERIOD_S = 3600
PRUNE_PERIOD_S = 60
# A stream still INITIALIZING with no owner this long after creation was never taken by
# any media node: close it so the camera can be started again.
ABANDONED_START_S = 120


async def close_abandoned_starts(now_offset_s: float = ABANDONED_START_S) -> int:
    streams = StreamService()
    cutoff = utcnow() - timedelta(seconds=now_offset_s)
    closed = 0
    for stream_id in await streams.abandoned_starts(cutoff):
        try:
            await streams.transition(stream_id, StreamState.ERROR, **failure_fields(
                MediaUnavailable("no media node started it")))
            await streams.close(stream_id)
            closed += 1
        except Conflict:
            continue
    return closed


async def run_housekeeping(redis: Redis, namespace: str, jobs: JobClient,
                           stale_s: float) -> None:
    """Enqueue retention hourly and node pruning every minute, once across all workers."""
    schedule = {
        "purge_recordings": (jobs.purge_recordings, RETENTION_PERIOD_S),
        "prune_media_nodes": (jobs.prune_media_nodes, PRUNE_PERIOD_S),
    }
    while True:
        # Every step is guarded: while Redis (or the database) is away the loop must go on,
        # or lost jobs would never run again once it is back.
        try:
            for name, (send, period) in schedule.items():
                if await redis.set(f"{namespace}:schedule:{name}", "1", ex=period, nx=True):
                    await send()
        except Exception as exc:
            logger.warning("periodic jobs not scheduled this round: %s", exc)
        try:
            rerun = await stale_jobs(stale_s)
            for snapshot_id in rerun["snapshot"]:
                await jobs.historical_snapshot(snapshot_id)
            for bookmark_id in rerun["bookmark"]:
                await jobs.export_bookmark(bookmark_id)
            if rerun["snapshot"] or rerun["bookmark"]:
                logger.warning("running lost jobs again: %s", rerun)
        except Exception:
            logger.exception("looking for lost jobs failed")
        try:
            closed = await close_abandoned_starts()
            if closed:
                logger.warning("closed %d streams that no media node started", closed)
        except Exception:
            logger.exception("closing abandoned starts failed")
        await asyncio.sleep(min(15.0, stale_s / 2))
