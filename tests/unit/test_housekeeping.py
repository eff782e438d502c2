"""The worker's schedule and the node registry's pruning, on real Redis and a real database.

The job client is the module's edge: a recorder stands in for Dramatiq here (what the
enqueued actors then do is tested with real workers elsewhere)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from redis.asyncio import Redis

from core.clock import utcnow
from core.nodes import NodeRegistry
from core.tables import MediaNode
from jobs.housekeeping import PRUNE_PERIOD_S, RETENTION_PERIOD_S, run_housekeeping


class RecordingJobs:
    """The JobClient methods housekeeping calls, recording what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[object, ...]]] = []

    async def purge_recordings(self) -> None:
        self.sent.append(("purge_recordings", ()))

    async def prune_media_nodes(self) -> None:
        self.sent.append(("prune_media_nodes", ()))

    async def historical_snapshot(self, snapshot_id: object) -> None:
        self.sent.append(("historical_snapshot", (snapshot_id,)))

    async def export_bookmark(self, bookmark_id: object) -> None:
        self.sent.append(("export_bookmark", (bookmark_id,)))


async def test_two_workers_schedule_each_periodic_job_once(app, settings):
    redis = Redis.from_url(settings.redis.url)
    namespace = settings.redis.namespace
    jobs = [RecordingJobs(), RecordingJobs()]
    tasks = [asyncio.create_task(run_housekeeping(redis, namespace, j, stale_s=120))  # type: ignore[arg-type]
             for j in jobs]
    try:
        for _ in range(100):
            sent = [actor for j in jobs for actor, _ in j.sent]
            if {"purge_recordings", "prune_media_nodes"} <= set(sent):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # both loops have had their turn
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    sent = sorted(actor for j in jobs for actor, _ in j.sent)
    assert sent == ["prune_media_nodes", "purge_recordings"]
    retention_ttl = await redis.ttl(f"{namespace}:schedule:purge_recordings")
    prune_ttl = await redis.ttl(f"{namespace}:schedule:prune_media_nodes")
    assert RETENTION_PERIOD_S - 10 < retention_ttl <= RETENTION_PERIOD_S
    assert PRUNE_PERIOD_S - 10 < prune_ttl <= PRUNE_PERIOD_S
    await redis.aclose()


async def test_nodes_silent_for_ten_leases_are_pruned(app):
    registry = NodeRegistry(lease_s=10)
    await registry.register("alive", "media-node.alive", 4)
    await registry.register("late", "media-node.late", 4)
    await registry.register("gone", "media-node.gone", 4)
    await MediaNode.update({MediaNode.heartbeat_at: utcnow() - timedelta(seconds=30)}).where(
        MediaNode.node_id == "late")
    await MediaNode.update({MediaNode.heartbeat_at: utcnow() - timedelta(seconds=101)}).where(
        MediaNode.node_id == "gone")
    assert [n.node_id for n in await registry.alive()] == ["alive"]
    assert await registry.prune() == 1
    left = {row["node_id"] for row in await MediaNode.select(MediaNode.node_id)}
    assert left == {"alive", "late"}
