"""Periodic work of the worker process: retention, stale nodes, abandoned starts, lost
media nodes, expired sign-in sessions, recording exports, and the worker's own heartbeat.

Every worker runs this loop; a Redis lock per task and period makes sure that only one of
them enqueues each run (or raises each notification).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from redis.asyncio import Redis

from core import notify
from core.captures import stale_jobs
from core.clock import iso_ms, utcnow
from core.errors import Conflict, MediaUnavailable
from core.nodes import NodeRegistry
from core.notify import Notifier
from core.recording_export import RecordingExports
from core.stream_states import StreamState
from core.streams import StreamService, failure_fields
from core.user_sessions import prune_sessions
from core.workers import WorkerRegistry
from jobs.client import JobClient

logger = logging.getLogger(__name__)

RETENTION_PERIOD_S = 3600
PRUNE_PERIOD_S = 60
# A stream still INITIALIZING with no owner this long after creation was never taken by
# any media node: close it so the camera can be started again.
ABANDONED_START_S = 120
EXPORT_PERIOD_S = 10


# A lost node is announced once; the mark outlives the node's row (pruned after ten leases).
LOST_NODE_MARK_S = 24 * 3600


async def close_abandoned_starts(now_offset_s: float = ABANDONED_START_S,
                                 notifier: Notifier | None = None) -> int:
    streams = StreamService(notifier=notifier)
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


async def announce_lost_nodes(redis: Redis, namespace: str, nodes: NodeRegistry,
                              notifier: Notifier) -> list[str]:
    """A `system_notification` (warning) for each media node whose heartbeat lapsed, once
    across all workers; returns the nodes announced by this call."""
    announced = []
    for node in await nodes.registered():
        if node.alive:
            continue
        if await redis.set(f"{namespace}:node-lost:{node.node_id}", "1", ex=LOST_NODE_MARK_S,
                           nx=True):
            await notifier.send(notify.system_notification(
                "warning", f"Media node {node.node_id} stopped answering (last heartbeat "
                f"{iso_ms(node.heartbeat_at)}); its streams move to other nodes"))
            logger.warning("media node %s stopped answering", node.node_id)
            announced.append(node.node_id)
    return announced


async def enqueue_recording_exports(redis: Redis, namespace: str, jobs: JobClient) -> int:
    """Enqueue the segment export of recordings with work due (at most one per session per
    EXPORT_PERIOD_S, across workers); lost export jobs run again this way too."""
    sent = 0
    for session_id in await RecordingExports().due():
        if await redis.set(f"{namespace}:schedule:export:{session_id}", "1",
                           ex=EXPORT_PERIOD_S, nx=True):
            await jobs.export_recording(session_id)
            sent += 1
    return sent


async def run_housekeeping(redis: Redis, namespace: str, jobs: JobClient, stale_s: float, *,
                           worker_id: str | None = None, notifier: Notifier | None = None,
                           lease_s: float = 10.0) -> None:
    """Enqueue retention hourly and node pruning every minute, once across all workers;
    renew this worker's heartbeat (when `worker_id` is given) every turn."""
    schedule = {
        "purge_recordings": (jobs.purge_recordings, RETENTION_PERIOD_S),
        "prune_media_nodes": (jobs.prune_media_nodes, PRUNE_PERIOD_S),
    }
    period = min(15.0, stale_s / 2)
    workers, nodes, started_at = WorkerRegistry(redis, namespace), NodeRegistry(lease_s), utcnow()
    while True:
        if worker_id is not None:
            try:
                await workers.beat(worker_id, started_at, period)
            except Exception:
                logger.exception("worker heartbeat failed")
        # Every step is guarded: while Redis (or the database) is away the loop must go on,
        # or lost jobs would never run again once it is back.
        try:
            for name, (send, every) in schedule.items():
                if await redis.set(f"{namespace}:schedule:{name}", "1", ex=every, nx=True):
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
            await enqueue_recording_exports(redis, namespace, jobs)
        except Exception:
            logger.exception("looking for due recording exports failed")
        try:
            closed = await close_abandoned_starts(notifier=notifier)
            if closed:
                logger.warning("closed %d streams that no media node started", closed)
        except Exception:
            logger.exception("closing abandoned starts failed")
        try:
            if notifier is not None:
                await announce_lost_nodes(redis, namespace, nodes, notifier)
            if await redis.set(f"{namespace}:schedule:prune_sessions", "1", ex=PRUNE_PERIOD_S,
                               nx=True):
                await prune_sessions()
        except Exception:
            logger.exception("lost nodes or session pruning failed")
        await asyncio.sleep(period)
