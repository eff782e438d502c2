"""Dramatiq actors. Each is short: the work lives in `core` services and `jobs.node`."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from core.clock import utcnow
from core.nodes import NodeRegistry
from core.recordings import RecordingIndex
from jobs.broker import DEFAULT_QUEUE, MEDIA_START_QUEUE
from jobs.captures import Captures
from jobs.context import current
from jobs.node import MediaNodeRuntime, NodeFull
from jobs.probe import probe_rtsp

logger = logging.getLogger(__name__)
START_DEADLINE_S = 40.0


def _node() -> MediaNodeRuntime:
    runtime = current().extras.get("node")
    if not isinstance(runtime, MediaNodeRuntime):
        raise RuntimeError("this actor runs on media nodes only")
    return runtime


def node_ping(sent_at: float) -> dict[str, Any]:
    """Answer on a media node's control queue: proves the node serves its queue."""
    ctx = current()
    return {"node_id": ctx.node_id, "sent_at": sent_at, "answered_at": time.time()}


def start_stream(stream_id: str) -> dict[str, Any]:
    """Taken from the shared start queue by a node with capacity (else retried elsewhere)."""
    return current().run(_node().start(uuid.UUID(stream_id)), timeout=START_DEADLINE_S)


def stop_stream(stream_id: str) -> dict[str, Any]:
    """Sent to the owning node's control queue."""
    return current().run(_node().stop(uuid.UUID(stream_id)), timeout=20.0)


VIEWER_OPS = frozenset({"consume", "connect", "add_candidate", "close", "whep_offer",
                        "whep_patch"})


def viewer_op(stream_id: str, op: str, consumer_id: str, *args: Any) -> dict[str, Any]:
    """Consumer and WHEP operations, sent to the control queue of the stream's node."""
    if op not in VIEWER_OPS:
        raise ValueError(f"unknown viewer operation {op!r}")
    node = _node()

    async def run() -> dict[str, Any]:
        viewers = node.viewers(uuid.UUID(stream_id))
        if viewers is None:
            return {"ok": False, "status": 409, "detail": "Stream is not running on its node"}
        result: dict[str, Any] = await getattr(viewers, op)(uuid.UUID(consumer_id), *args)
        return result

    return current().run(run(), timeout=15.0)


def live_snapshot(snapshot_id: str) -> None:
    """On the node that owns the stream: JPEG the newest frame of its GOP cache."""
    node = _node()

    async def run() -> None:
        row = await node.captures.snapshots.get(uuid.UUID(snapshot_id))
        pipeline = node.pipelines.get(row["stream_id"])
        await node.captures.live_snapshot(
            row["id"], pipeline.ingest.gop_cache if pipeline is not None else None)

    current().run(run(), timeout=60)


def historical_snapshot(snapshot_id: str) -> None:
    """On a worker: JPEG the recorded frame nearest the snapshot's time."""
    ctx = current()
    ctx.run(_captures(ctx).historical_snapshot(uuid.UUID(snapshot_id)), timeout=120)


def export_bookmark(bookmark_id: str) -> None:
    """On a worker: wait for the recording to cover the clip, cut the MP4 and thumbnail."""
    ctx = current()
    ctx.run(_captures(ctx).export_bookmark(uuid.UUID(bookmark_id)), timeout=900)


def _captures(ctx: Any) -> Captures:
    captures = ctx.extras.get("captures")
    if captures is None:
        captures = ctx.extras["captures"] = Captures(ctx.settings)
    assert isinstance(captures, Captures)
    return captures


def validate_rtsp(url: str, transport: str) -> dict[str, Any]:
    """Probe a camera without saving it (worker)."""
    settings = current().settings
    return probe_rtsp(url, transport, settings.media.rtsp_open_timeout_s,
                      settings.media.rtsp_read_timeout_s)


def purge_recordings() -> int:
    """Retention: remove HLS segments (files and rows) older than the retention period."""
    ctx = current()
    media = ctx.settings.media
    index = RecordingIndex(media.recordings_dir(ctx.settings.server.data_dir))
    cutoff = utcnow() - timedelta(hours=media.hls_retention_h)
    removed = ctx.run(index.purge_before(cutoff), timeout=600)
    logger.info("retention removed %d segments older than %s", removed, cutoff.isoformat())
    return removed


def prune_media_nodes() -> int:
    """Forget media nodes whose heartbeat stopped long ago."""
    ctx = current()
    pruned = ctx.run(NodeRegistry(ctx.settings.media.lease_s).prune())
    if pruned:
        logger.info("pruned %d stale media nodes", pruned)
    return pruned


def _retry_when_full(retries: int, exc: BaseException) -> bool:
    return isinstance(exc, NodeFull) and retries < 300


# name → (function, options). Control actors are sent to a node's own queue at call time;
# callers wait on them, so they are never retried.
ACTORS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "node_ping": (node_ping, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                              "store_results": True, "time_limit": 10_000}),
    "start_stream": (start_stream, {"queue_name": MEDIA_START_QUEUE, "store_results": True,
                                    "retry_when": _retry_when_full, "min_backoff": 200,
                                    "max_backoff": 1000, "time_limit": 60_000}),
    "stop_stream": (stop_stream, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                                  "store_results": True, "time_limit": 30_000}),
    "viewer_op": (viewer_op, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                              "store_results": True, "time_limit": 20_000}),
    "live_snapshot": (live_snapshot, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                                      "time_limit": 70_000}),
    "historical_snapshot": (historical_snapshot, {"queue_name": DEFAULT_QUEUE,
                                                  "max_retries": 2, "time_limit": 130_000}),
    "export_bookmark": (export_bookmark, {"queue_name": DEFAULT_QUEUE, "max_retries": 2,
                                          "time_limit": 900_000}),
    "validate_rtsp": (validate_rtsp, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                                      "store_results": True, "time_limit": 30_000}),
    "purge_recordings": (purge_recordings, {"queue_name": DEFAULT_QUEUE, "max_retries": 3,
                                            "time_limit": 3_600_000}),
    "prune_media_nodes": (prune_media_nodes, {"queue_name": DEFAULT_QUEUE, "max_retries": 3}),
}


def declare_actors(broker: RedisBroker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every actor on `broker` (the API, workers and nodes all call this)."""
    return {
        name: dramatiq.actor(actor_name=name, broker=broker, **options)(fn)
        for name, (fn, options) in ACTORS.items()
    }
