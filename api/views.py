"""Response bodies in the guide's exact shapes, built from the services' records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypedDict

from core.clock import iso, utcnow
from core.devices import DeviceRecord, DeviceService
from core.stream_states import StreamState
from core.streams import ProducerRecord, StreamRecord, StreamSummary


class DeviceView(TypedDict):
    id: str
    name: str
    description: str | None
    rtsp_url: str
    is_active: bool
    location: str | None
    created_at: str
    updated_at: str | None


class StreamingView(TypedDict):
    active: bool
    room_id: str | None
    started_at: str | None


class DeviceStatusView(TypedDict):
    device_id: str
    name: str
    description: str | None
    location: str | None
    rtsp_url: str
    is_active: bool
    created_at: str
    updated_at: str | None
    streaming: StreamingView


class EndpointsView(TypedDict):
    webrtc: str
    hls: str
    health: str


class StreamSummaryView(TypedDict):
    id: str
    name: str
    camera_id: str
    state: str
    endpoints: EndpointsView
    created_at: str


class PaginationView(TypedDict):
    total: int
    limit: int
    offset: int


class StreamListView(TypedDict):
    streams: list[StreamSummaryView]
    pagination: PaginationView


class MetricsView(TypedDict):
    bitrate_kbps: float
    fps: float
    packet_loss: float
    jitter_ms: float


class HealthView(TypedDict):
    stream_id: str
    state: str
    is_healthy: bool
    uptime_seconds: int
    metrics: MetricsView
    last_error: str | None
    checked_at: str | None
    codecs: dict[str, Any]  # VAS: what is ingested, served over WebRTC, and the transcoder


# Optional keys by subclassing with total=False: NotRequired[...] is lost under
# `from __future__ import annotations` on Python 3.11.
class _ProducersView(TypedDict):
    video: str | None


class ProducersView(_ProducersView, total=False):
    audio: str  # only when the stream's camera sends audio (docs/codecs.md)


class _StartedView(TypedDict):
    status: str
    started_at: str | None


class StartedView(_StartedView, total=False):
    message: str  # when the stream was already running


class _StartStreamView(TypedDict):
    status: str
    device_id: str
    room_id: str
    transport_id: str | None
    producers: ProducersView
    stream: StartedView
    v2_stream_id: str


class StartStreamView(_StartStreamView, total=False):
    reconnect: bool  # true when the stream was already running


class StopStreamView(TypedDict):
    status: str
    device_id: str
    stopped: bool


class ProbedVideoView(TypedDict):
    codec: str
    width: int
    height: int
    fps: float | None
    profile: str | None


class _ValidateView(TypedDict):
    valid: bool
    rtsp_url: str


class ValidateView(_ValidateView, total=False):
    """Either shape of validate: `valid` true with the video, or false with the error."""

    ssrc: int
    message: str
    video: ProbedVideoView
    error: str
    error_code: str


class ProducerView(TypedDict):
    id: str
    mediasoup_id: str
    state: str
    ssrc: int | None


class ConsumerCountsView(TypedDict):
    count: int
    active: int


class StreamDetailView(TypedDict):
    id: str
    name: str
    camera_id: str
    state: str
    endpoints: EndpointsView
    created_at: str
    codec_config: dict[str, Any]
    producer: ProducerView | None
    consumers: ConsumerCountsView
    uptime_seconds: int


def device_view(devices: DeviceService, row: DeviceRecord) -> DeviceView:
    return {
        "id": str(row.id),
        "name": row.name,
        "description": row.description,
        "rtsp_url": devices.public_url(row),
        "is_active": row.is_active,
        "location": row.location,
        "created_at": iso(row.created_at) or "",
        "updated_at": iso(row.updated_at),
    }


def device_status_view(
    devices: DeviceService, row: DeviceRecord, stream: StreamRecord | None
) -> DeviceStatusView:
    base = device_view(devices, row)
    active = stream is not None and stream.active
    return {
        "device_id": base["id"],
        "name": base["name"],
        "description": base["description"],
        "location": base["location"],
        "rtsp_url": base["rtsp_url"],
        "is_active": base["is_active"],
        "created_at": base["created_at"],
        "updated_at": base["updated_at"],
        "streaming": {
            "active": active,
            # The guide's room is the device; the stream id is what V2 calls use.
            "room_id": base["id"] if active else None,
            "started_at": iso(stream.started_at or stream.created_at)
            if stream and active
            else None,
        },
    }


def endpoints(stream_id: uuid.UUID | str) -> EndpointsView:
    base = f"/v2/streams/{stream_id}"
    return {"webrtc": f"{base}/consume", "hls": f"{base}/hls/playlist.m3u8",
            "health": f"{base}/health"}


def stream_summary(row: StreamRecord | StreamSummary) -> StreamSummaryView:
    return {
        "id": str(row.id),
        "name": row.name,
        "camera_id": str(row.camera_id),
        "state": row.state.value,
        "endpoints": endpoints(row.id),
        "created_at": iso(row.created_at) or "",
    }


def stream_list_view(rows: list[StreamSummary], total: int, limit: int,
                     offset: int) -> StreamListView:
    return {
        "streams": [stream_summary(row) for row in rows],
        "pagination": {"total": total, "limit": limit, "offset": offset},
    }


def uptime_seconds(row: StreamRecord, now: datetime | None = None) -> int:
    """Seconds since the ingest went live, while the stream holds an ingest; else 0."""
    if row.started_at is None or not row.active:
        return 0
    return max(0, int(((now or utcnow()) - row.started_at).total_seconds()))


def producer_view(producer: ProducerRecord | None) -> ProducerView | None:
    if producer is None:
        return None
    return {"id": str(producer.id), "mediasoup_id": producer.mediasoup_id,
            "state": producer.state.value, "ssrc": producer.ssrc}


def stream_detail(
    row: StreamRecord, producer: ProducerRecord | None, counts: tuple[int, int]
) -> StreamDetailView:
    summary = stream_summary(row)
    return {
        "id": summary["id"],
        "name": summary["name"],
        "camera_id": summary["camera_id"],
        "state": summary["state"],
        "endpoints": summary["endpoints"],
        "created_at": summary["created_at"],
        "codec_config": row.codec_config or {"video": None},
        "producer": producer_view(producer),
        "consumers": {"count": counts[0], "active": counts[1]},
        "uptime_seconds": uptime_seconds(row),
    }


def health_view(row: StreamRecord, fresh_s: float, now: datetime | None = None) -> HealthView:
    """What the owning node last measured, and when (`checked_at`: null until it reports).

    Healthy means LIVE, no error, and a report younger than `fresh_s` (the node lease): a
    stream whose node stopped reporting is not called healthy on old or missing figures.
    """
    metrics = row.metrics or {}
    measured = row.checked_at is not None and (
        (now or utcnow()) - row.checked_at).total_seconds() <= fresh_s
    # A LIVE stream whose recording fails (disk full) streams on, but is not healthy.
    recording_error = metrics.get("recording_error") if measured else None
    last_error = row.last_error
    if last_error is None and recording_error:
        last_error = f"RECORDING_FAILED: {recording_error}"
    return {
        "stream_id": str(row.id),
        "state": row.state.value,
        "is_healthy": row.state is StreamState.LIVE and last_error is None and measured,
        "uptime_seconds": uptime_seconds(row),
        "metrics": {
            "bitrate_kbps": float(metrics.get("bitrate_kbps", 0.0)),
            "fps": float(metrics.get("fps", 0.0)),
            "packet_loss": float(metrics.get("packet_loss", 0.0)),
            "jitter_ms": float(metrics.get("jitter_ms", 0.0)),
        },
        "last_error": last_error,
        "checked_at": iso(row.checked_at),
        "codecs": codecs_view(row),
    }


def codecs_view(row: StreamRecord) -> dict[str, Any]:
    """Health's `codecs`: the camera's codec, what WebRTC is served (None: refused, with
    `webrtc_refusal`), and the transcoder as last reported (None: the stream has none)."""
    config = row.codec_config or {}
    video = config.get("video") or {}
    return {
        "ingested": video.get("codec"),
        "webrtc": config.get("webrtc"),
        "webrtc_refusal": row.webrtc_refusal,
        "transcode": config.get("transcode"),
        "transcoder": (row.metrics or {}).get("transcoder"),
        # The camera's audio and its Opus transcoder (None: the camera sends no audio).
        "audio": config.get("audio"),
        "audio_transcoder": (row.metrics or {}).get("audio_transcoder"),
    }


def start_view(device_id: uuid.UUID, stream: StreamRecord, producer: ProducerRecord | None,
               reconnect: bool) -> StartStreamView:
    """The answer of start-stream (guide §3.2), with `reconnect` for a running camera."""
    started_at = iso(stream.started_at or stream.created_at)
    body: StartStreamView = {
        "status": "success",
        "device_id": str(device_id),
        "room_id": str(device_id),
        "transport_id": producer.transport_id if producer else None,
        "producers": {"video": producer.mediasoup_id if producer else None},
        "stream": {"status": "started", "started_at": started_at},
        "v2_stream_id": str(stream.id),
    }
    if producer is not None and stream.has_audio:
        body["producers"]["audio"] = producer.audio_mediasoup_id
    if reconnect:
        body["stream"] = {"status": "active", "message": "Stream already running",
                          "started_at": started_at}
        body["reconnect"] = True
    return body
