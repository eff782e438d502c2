"""The body of `GET /system/status` (OmniSight document, "Get system status")."""

from __future__ import annotations

from typing import TypedDict

from core.clock import iso_ms
from core.devices import CameraStatus
from core.system_status import SystemStatus


class ServiceView(TypedDict):
    name: str
    status: str
    uptime: int


class RecordingsStorageView(TypedDict):
    total: int
    oldest: str | None


class StorageView(TypedDict):
    total: int
    used: int
    free: int
    recordings: RecordingsStorageView


class CameraCountsView(TypedDict):
    total: int
    online: int
    offline: int
    error: int


class RecordingCountsView(TypedDict):
    active: int
    total: int


class EventCountsView(TypedDict):
    last24Hours: int
    byType: dict[str, int]


class SystemStatusView(TypedDict):
    status: str
    version: str
    uptime: int
    services: list[ServiceView]
    storage: StorageView
    cameras: CameraCountsView
    recordings: RecordingCountsView
    events: EventCountsView


def system_status_view(status: SystemStatus) -> SystemStatusView:
    cameras = status.cameras
    return {
        "status": "healthy" if status.healthy else "degraded",
        "version": status.version,
        "uptime": status.uptime_s,
        "services": [{"name": s.name, "status": "healthy" if s.healthy else "unhealthy",
                      "uptime": s.uptime_s} for s in status.services],
        "storage": {"total": status.disk.total, "used": status.disk.used,
                    "free": status.disk.free,
                    "recordings": {"total": status.recordings.size,
                                   "oldest": iso_ms(status.recordings.oldest)}},
        "cameras": {"total": sum(cameras.values()), "online": cameras[CameraStatus.ONLINE],
                    "offline": cameras[CameraStatus.OFFLINE], "error": cameras[CameraStatus.ERROR]},
        "recordings": {"active": status.recording_streams, "total": status.recordings.streams},
        "events": {"last24Hours": sum(status.events.values()), "byType": dict(status.events)},
    }
