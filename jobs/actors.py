"""Dramatiq actors. Each is short: the work itself lives in `core` services or the media node."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from core.nodes import NodeRegistry
from jobs.broker import DEFAULT_QUEUE
from jobs.context import current

logger = logging.getLogger(__name__)


def node_ping(sent_at: float) -> dict[str, Any]:
    """Answer on a media node's control queue: proves the node serves its queue."""
    ctx = current()
    return {"node_id": ctx.node_id, "sent_at": sent_at, "answered_at": time.time()}


def prune_media_nodes() -> int:
    """Forget media nodes whose heartbeat stopped long ago."""
    ctx = current()
    registry = NodeRegistry(ctx.settings.media.lease_s)
    pruned = ctx.run(registry.prune())
    if pruned:
        logger.info("pruned %d stale media nodes", pruned)
    return pruned


# name → (function, options). Control actors are sent to a node's own queue at call time,
# so their queue here is only a default; they are never retried: the caller is waiting.
ACTORS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "node_ping": (node_ping, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                              "store_results": True, "time_limit": 10_000}),
    "prune_media_nodes": (prune_media_nodes, {"queue_name": DEFAULT_QUEUE, "max_retries": 3}),
}


def declare_actors(broker: RedisBroker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every actor on `broker` (the API, workers and nodes all call this)."""
    return {
        name: dramatiq.actor(actor_name=name, broker=broker, **options)(fn)
        for name, (fn, options) in ACTORS.items()
    }
