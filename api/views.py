"""Response bodies in the guide's exact shapes, built from table rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypedDict

from core.clock import iso, utcnow
from core.devices import DeviceService
from core.stream_states import ACTIVE_STATES, StreamState


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
    checked_at: str


def device_view(devices: DeviceService, row: dict[str, Any]) -> DeviceView:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "description": row["description"],
        "rtsp_url": devices.public_url(row),
        "is_active": bool(row["is_active"]),
        "location": row["location"],
        "created_at": iso(row["created_at"]) or "",
        "updated_at": iso(row["updated_at"]),
    }


def device_status_view(
    devices: DeviceService, row: dict[str, Any], stream: dict[str, Any] | None
) -> DeviceStatusView:
    base = device_view(devices, row)
    active = stream is not None and StreamState(stream["state"]) in ACTIVE_STATES
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
            "started_at": iso(stream["started_at"] or stream["created_at"])
            if stream and active
            else None,
        },
    }


def endpoints(stream_id: uuid.UUID | str) -> EndpointsView:
    base = f"/v2/streams/{stream_id}"
    return {"webrtc": f"{base}/consume", "hls": f"{base}/hls/playlist.m3u8",
            "health": f"{base}/health"}


def stream_summary(row: dict[str, Any]) -> StreamSummaryView:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "camera_id": str(row["camera_id"]),
        "state": row["state"],
        "endpoints": endpoints(row["id"]),
        "created_at": iso(row["created_at"]) or "",
    }


def uptime_seconds(row: dict[str, Any], now: datetime | None = None) -> int:
    """Seconds since the ingest went live, while the stream holds an ingest; else 0."""
    started = row.get("started_at")
    if started is None or StreamState(row["state"]) not in ACTIVE_STATES:
        return 0
    return max(0, int(((now or utcnow()) - started).total_seconds()))


def stream_detail(
    row: dict[str, Any], producer: dict[str, Any] | None, counts: tuple[int, int]
) -> dict[str, Any]:
    return {
        **stream_summary(row),
        "codec_config": row["codec_config"] or {"video": None},
        "producer": None if producer is None else {
            "id": str(producer["id"]),
            "mediasoup_id": producer["mediasoup_id"],
            "state": producer["state"],
            "ssrc": producer["ssrc"],
        },
        "consumers": {"count": counts[0], "active": counts[1]},
        "uptime_seconds": uptime_seconds(row),
    }


def health_view(row: dict[str, Any]) -> HealthView:
    metrics = row["metrics"] or {}
    state = StreamState(row["state"])
    return {
        "stream_id": str(row["id"]),
        "state": state.value,
        "is_healthy": state is StreamState.LIVE and row["last_error"] is None,
        "uptime_seconds": uptime_seconds(row),
        "metrics": {
            "bitrate_kbps": float(metrics.get("bitrate_kbps", 0.0)),
            "fps": float(metrics.get("fps", 0.0)),
            "packet_loss": float(metrics.get("packet_loss", 0.0)),
            "jitter_ms": float(metrics.get("jitter_ms", 0.0)),
        },
        "last_error": row["last_error"],
        "checked_at": iso(row["checked_at"] or utcnow()) or "",
    }
