"""The media-node process: registers itself, renews its heartbeat and leases, serves the
shared start queue and its own control queue, and takes over streams of lost nodes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

from core import detection_changes
from core.nodes import NodeRegistry
from core.notify import Notifier
from core.settings import Settings
from jobs.broker import MEDIA_START_QUEUE, node_queue
from jobs.context import JobContext
from jobs.metrics import NodeCollector, watch_loop_lag
from jobs.node.protocol import Handover
from jobs.node.runtime import MediaNodeRuntime
from jobs.process import cancel_all, serve

logger = logging.getLogger(__name__)

# Callers wait on control jobs: the node's consumers block on their queues' wake-up lists
# (`jobs.broker.WakingRedisBroker`) and pick a control message up at once, so the worker's
# timeout only bounds how long an idle consumer or worker thread sleeps between checks.
CONTROL_POLL_MS = 1000


def new_node_id() -> str:
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def _heartbeat(registry: NodeRegistry, runtime: MediaNodeRuntime, period: float) -> None:
    while True:
        try:
            await registry.heartbeat(runtime.node_id, streams=runtime.load)
            await runtime.tick()
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may blip; the next beat tries again
            logger.exception("heartbeat failed")
        await asyncio.sleep(period)


async def _hand_over(registry: NodeRegistry, runtime: MediaNodeRuntime,
                     stream_ids: list[uuid.UUID]) -> None:
    """Wake the other live nodes at once (not at their next heartbeat) to take the streams
    we released; they race for each by its lease."""
    if not stream_ids or runtime.jobs is None:
        return
    message = Handover(from_node=runtime.node_id, stream_ids=stream_ids)
    peers = [n for n in await registry.alive() if n.node_id != runtime.node_id]
    for peer in peers:
        try:
            await runtime.jobs.handover(peer, message)
        except Exception:  # the peers still find the streams at their next heartbeat
            logger.exception("could not tell node %s to take over", peer.node_id)
    logger.info("handed %d streams over to %d nodes", len(stream_ids), len(peers))


async def run_media_node(settings: Settings, node_id: str | None = None) -> None:
    """Serve as a media node until signalled."""
    node_id = node_id or settings.media.node_id or new_node_id()
    queue = node_queue(node_id)
    registry = NodeRegistry(settings.media.lease_s)
    assert settings.redis.url is not None
    notifier = Notifier(settings.redis.url, settings.redis.namespace)
    runtime = MediaNodeRuntime(settings, node_id, notifier=notifier)
    tasks: list[asyncio.Task[None]] = []

    async def started(ctx: JobContext) -> None:
        ctx.extras["node"] = runtime
        ctx.extras["metrics"].register(NodeCollector(runtime))
        runtime.jobs = ctx.extras["jobs"]
        await registry.register(node_id, queue, settings.media.node_capacity)
        await runtime.resume()
        tasks.append(asyncio.create_task(
            _heartbeat(registry, runtime, settings.media.heartbeat_s)))
        tasks.append(asyncio.create_task(watch_loop_lag(ctx.extras["metrics"])))
        tasks.append(asyncio.create_task(detection_changes.follow(
            settings.redis.url or "", settings.redis.namespace, runtime.detection_changed)))
        logger.info("media node %s registered, control queue %s", node_id, queue)

    async def stopping(ctx: JobContext) -> None:
        await cancel_all(tasks)
        await _hand_over(registry, runtime, await runtime.shutdown())
        await registry.deregister(node_id)
        notifier.close()

    await serve(
        settings, {MEDIA_START_QUEUE, queue}, node_id=node_id, worker_threads=8,
        poll_ms=CONTROL_POLL_MS, on_started=started, on_stopping=stopping,
    )
