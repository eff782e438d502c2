"""The media-node process: registers itself, renews its heartbeat, serves its control queue.

A node takes `start_stream` jobs from the shared start queue and serves the control jobs of
the streams it owns on a queue of its own (see `jobs.broker.node_queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from core.nodes import NodeRegistry
from core.settings import Settings
from jobs.broker import MEDIA_START_QUEUE, node_queue
from jobs.context import JobContext
from jobs.process import serve

logger = logging.getLogger(__name__)

# Callers wait on control jobs: keep Dramatiq's idle polling short on this process.
CONTROL_POLL_MS = 50


def new_node_id() -> str:
    return f"{socket.gethostname()[:32]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def _heartbeat(registry: NodeRegistry, ctx: JobContext, period: float) -> None:
    assert ctx.node_id is not None
    while True:
        await asyncio.sleep(period)
        try:
            await registry.heartbeat(ctx.node_id, streams=0)
        except Exception:  # the database may blip; the next beat tries again
            logger.exception("heartbeat failed")


async def run_media_node(settings: Settings, node_id: str | None = None) -> None:
    """Serve as a media node until signalled."""
    node_id = node_id or new_node_id()
    queue = node_queue(node_id)
    registry = NodeRegistry(settings.media.lease_s)
    tasks: list[asyncio.Task[None]] = []

    async def started(ctx: JobContext) -> None:
        await registry.register(node_id, queue, settings.media.node_capacity)
        tasks.append(asyncio.create_task(_heartbeat(registry, ctx, settings.media.heartbeat_s)))
        logger.info("media node %s registered, control queue %s", node_id, queue)

    async def stopping(ctx: JobContext) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await registry.deregister(node_id)

    await serve(
        settings, {MEDIA_START_QUEUE, queue}, node_id=node_id, worker_threads=8,
        poll_ms=CONTROL_POLL_MS, on_started=started, on_stopping=stopping,
    )
