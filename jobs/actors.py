"""Dramatiq actors. Each is short: the work lives in `core` services and `jobs.node`.

Node calls take and answer the typed messages of `jobs.node.protocol`, as JSON."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from core import notify
from core.clock import utcnow
from core.errors import VasError
from core.events import EventService
from core.nodes import NodeRegistry
from core.notify import Notifier
from core.recording_retention import RecordingRetention, disk_usage_percent
from core.recordings import RecordingIndex
from core.retention import disk_state
from core.system_settings import SystemSettingsService
from jobs.broker import DEFAULT_QUEUE, DETECT_QUEUE, MEDIA_START_QUEUE
from jobs.camera_guard import camera_resolver
from jobs.captures import Captures
from jobs.client import DETECT_ACTOR
from jobs.context import current
from jobs.detection import detection_worker
from jobs.metrics import cpu_spent
from jobs.node.protocol import (
    DetectFrame,
    Handover,
    LiveSnapshot,
    Message,
    Ping,
    StartStream,
    StopStream,
    Validate,
    ViewerRequest,
    decode,
    encode,
    error_to_reply,
)
from jobs.node.runtime import MediaNodeRuntime, NodeFull
from jobs.probe import probe_rtsp
from jobs.recording_export import RecordingExporter

logger = logging.getLogger(__name__)
START_DEADLINE_S = 40.0


def _node() -> MediaNodeRuntime:
    runtime = current().extras.get("node")
    if not isinstance(runtime, MediaNodeRuntime):
        raise RuntimeError("this actor runs on media nodes only")
    return runtime


def _answer(call: Coroutine[Any, Any, Message], timeout: float) -> Any:
    """Run a node call on the process loop; its reply (or refusal) as JSON builtins."""
    async def run() -> Message:
        try:
            return await call
        except VasError as exc:
            return error_to_reply(exc)

    return encode(current().run(run(), timeout=timeout))


def node_ping(request: Any) -> Any:
    """Answer on a media node's control queue: proves the node serves its queue."""
    ping = decode(request, Ping)
    return encode(_node().ping(ping.sent_at))


def start_stream(request: Any) -> Any:
    """Taken from the shared start queue by a node with capacity (else retried elsewhere)."""
    return _answer(_node().start(decode(request, StartStream).stream_id), START_DEADLINE_S)


def stop_stream(request: Any) -> Any:
    """Sent to the owning node's control queue."""
    return _answer(_node().stop(decode(request, StopStream).stream_id), 20.0)


def viewer_op(request: Any) -> Any:
    """Consumer and WHEP requests, sent to the control queue of the stream's node."""
    return _answer(_node().viewer(decode(request, ViewerRequest)), 15.0)


def handover(request: Any) -> None:
    """On each other node when one stops: take over the streams it released, at once."""
    message = decode(request, Handover)
    taken = current().run(_node().adopt(message.stream_ids), timeout=60)
    logger.info("took over %d of the %d streams handed over by %s", taken,
                len(message.stream_ids), message.from_node)


def live_snapshot(request: Any) -> None:
    """On the node that owns the stream: JPEG the newest frame of its GOP cache."""
    node = _node()
    current().run(node.live_snapshot(decode(request, LiveSnapshot).snapshot_id), timeout=60)


def historical_snapshot(snapshot_id: str) -> None:
    """On a worker: JPEG the recorded frame nearest the snapshot's time."""
    ctx = current()
    ctx.run(_captures(ctx).historical_snapshot(uuid.UUID(snapshot_id)), timeout=120)


def export_bookmark(bookmark_id: str) -> None:
    """On a worker: wait for the recording to cover the clip, cut the MP4 and thumbnail."""
    ctx = current()
    ctx.run(_captures(ctx).export_bookmark(uuid.UUID(bookmark_id)), timeout=900)


def export_recording(session_id: str) -> int:
    """On a worker: cut what is due of a recording into its segments, with thumbnails."""
    ctx = current()
    exporter = ctx.extras.get("recording_exporter")
    if exporter is None:
        exporter = ctx.extras["recording_exporter"] = RecordingExporter(ctx.settings)
    assert isinstance(exporter, RecordingExporter)
    return ctx.run(exporter.export(uuid.UUID(session_id)), timeout=900)


def _captures(ctx: Any) -> Captures:
    captures = ctx.extras.get("captures")
    if captures is None:
        captures = ctx.extras["captures"] = Captures(ctx.settings)
    assert isinstance(captures, Captures)
    return captures


def validate_rtsp(request: Any) -> Any:
    """Probe a camera without saving it (worker)."""
    settings = current().settings
    validate = decode(request, Validate)
    return encode(probe_rtsp(validate.url, validate.transport,
                             settings.media.rtsp_open_timeout_s,
                             settings.media.rtsp_read_timeout_s,
                             resolve=camera_resolver(settings)))


def purge_recordings() -> int:
    """Retention over the recorder's segments and recordings' segments alike, oldest first:
    older than the retention period (the sooner of VAS_HLS_RETENTION_HOURS and
    `storage.retentionDays`) and, while the disk is fuller than `storage.maxUsage`, the
    oldest (only when `autoCleanup`); events go with the recordings of their moments: older
    than the cutoff, or, per camera, than the newest segment of that camera removed for
    disk use. A disk
    still above `maxUsage` afterwards raises a `system_notification` (warning)."""
    ctx = current()
    media, data_dir = ctx.settings.media, ctx.settings.server.data_dir
    index = RecordingIndex(media.recordings_dir(data_dir))
    retention = RecordingRetention(index, data_dir / "recordings" / "sessions")
    storage = ctx.run(SystemSettingsService(media.recordings_dir(data_dir)).get()).storage
    removed = 0
    if storage.auto_cleanup:
        cutoff = utcnow() - min(timedelta(hours=media.hls_retention_h),
                                timedelta(days=storage.retention_days))
        data_dir.mkdir(parents=True, exist_ok=True)
        result = ctx.run(retention.apply(cutoff, storage.max_usage,
                                         lambda: disk_usage_percent(data_dir)), timeout=3600)
        logger.info("retention removed %d segments older than %s and %d for disk use",
                    result.by_age, cutoff.isoformat(), result.by_usage)
        removed = result.by_age + result.by_usage
        service = EventService(data_dir)
        events = ctx.run(service.purge_before(cutoff), timeout=600)
        for camera, reach in result.usage_reach.items():  # what the disk-use rule removed
            events += ctx.run(service.purge_before(reach, camera), timeout=600)
        if events:
            logger.info("retention removed %d events (older than %s, or than the segments "
                        "removed for disk use of their camera)", events, cutoff)
    disk = disk_state(index.root)
    if disk.percent > storage.max_usage:
        assert ctx.settings.redis.url is not None
        notifier = Notifier(ctx.settings.redis.url, ctx.settings.redis.namespace)
        try:
            ctx.run(notifier.send(notify.system_notification(
                "warning", f"Storage usage {disk.percent:.1f}% is above "
                f"{storage.max_usage}% (storage.maxUsage)")))
        finally:
            notifier.close()
    return removed


def prune_media_nodes() -> int:
    """Forget media nodes whose heartbeat stopped long ago."""
    ctx = current()
    pruned = ctx.run(NodeRegistry(ctx.settings.media.lease_s).prune())
    if pruned:
        logger.info("pruned %d stale media nodes", pruned)
    return pruned


def detect_frame(request: Any) -> None:
    """On a detection worker: run the object detector on a node's frame, merge into events."""
    ctx = current()
    with cpu_spent("detection", "worker"):
        detection_worker(ctx).handle(decode(request, DetectFrame))


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
    "handover": (handover, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                            "time_limit": 70_000}),
    "live_snapshot": (live_snapshot, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                                      "time_limit": 70_000}),
    "historical_snapshot": (historical_snapshot, {"queue_name": DEFAULT_QUEUE,
                                                  "max_retries": 2, "time_limit": 130_000}),
    "export_bookmark": (export_bookmark, {"queue_name": DEFAULT_QUEUE, "max_retries": 2,
                                          "time_limit": 900_000}),
    "export_recording": (export_recording, {"queue_name": DEFAULT_QUEUE, "max_retries": 2,
                                            "time_limit": 900_000}),
    "validate_rtsp": (validate_rtsp, {"queue_name": DEFAULT_QUEUE, "max_retries": 0,
                                      "store_results": True, "time_limit": 30_000}),
    "purge_recordings": (purge_recordings, {"queue_name": DEFAULT_QUEUE, "max_retries": 3,
                                            "time_limit": 3_600_000}),
    "prune_media_nodes": (prune_media_nodes, {"queue_name": DEFAULT_QUEUE, "max_retries": 3}),
    DETECT_ACTOR: (detect_frame, {"queue_name": DETECT_QUEUE, "max_retries": 3,
                                  "min_backoff": 500, "time_limit": 60_000}),
}


def declare_actors(broker: RedisBroker) -> dict[str, dramatiq.Actor[Any, Any]]:
    """Declare every actor on `broker` (the API, workers and nodes all call this)."""
    return {
        name: dramatiq.actor(actor_name=name, broker=broker, **options)(fn)
        for name, (fn, options) in ACTORS.items()
    }
