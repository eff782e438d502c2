"""Hosting for `vas worker` and `vas media-node`: database, broker, actors, a Dramatiq worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable

import dramatiq
from prometheus_client import CollectorRegistry

from core.db import close_database, open_database
from core.settings import Settings
from jobs.actors import declare_actors
from jobs.broker import build_broker
from jobs.client import JobClient
from jobs.context import JobContext, install
from jobs.metrics import CpuCollector, JobMetrics, serve_metrics

logger = logging.getLogger(__name__)


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel background tasks and wait until each has finished."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def serve(
    settings: Settings,
    queues: set[str],
    *,
    node_id: str | None = None,
    worker_threads: int = 4,
    poll_ms: int = 1000,
    on_started: Callable[[JobContext], Awaitable[None]] | None = None,
    on_stopping: Callable[[JobContext], Awaitable[None]] | None = None,
) -> None:
    """Run a Dramatiq worker on `queues` until SIGINT/SIGTERM, then stop it cleanly.

    `poll_ms` bounds Dramatiq's idle back-off: a control queue that callers wait on is
    polled often, a batch queue rarely.
    """
    engine = await open_database(settings.database)
    broker = build_broker(settings.redis)
    registry = CollectorRegistry()
    broker.add_middleware(JobMetrics(registry))
    registry.register(CpuCollector("node" if node_id is not None else "worker"))
    actors = declare_actors(broker)
    for queue in queues:
        broker.declare_queue(queue)
    ctx = JobContext(settings=settings, loop=asyncio.get_running_loop(), node_id=node_id)
    ctx.extras["jobs"] = JobClient(broker, actors)
    ctx.extras["metrics"] = registry
    metrics_server = None
    if settings.server.metrics_port is not None:
        metrics_server = serve_metrics(settings.server.metrics_port, settings.server.hosts[0],
                                       registry)
        logger.info("metrics on port %d", settings.server.metrics_port)
    install(ctx)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = dramatiq.Worker(
        broker, queues=queues, worker_threads=worker_threads, worker_timeout=poll_ms
    )
    worker.start()
    logger.info("serving queues %s", ", ".join(sorted(queues)))
    try:
        if on_started is not None:
            await on_started(ctx)
        await stop.wait()
    finally:
        logger.info("stopping")
        ctx.cancel_pending()
        if on_stopping is not None:
            await on_stopping(ctx)
        await asyncio.to_thread(worker.stop, 10_000)
        broker.close()
        if metrics_server is not None:
            metrics_server.shutdown()
        install(None)
        await close_database(engine)
