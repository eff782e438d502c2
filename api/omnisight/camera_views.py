"""OmniSight camera response bodies (camelCase, dates as `2023-01-01T00:00:00.000Z`)."""

from __future__ import annotations

import math
from typing import Any, TypedDict

from core.clock import iso_ms
from core.devices import CameraPage, CameraStatus, DeviceRecord

PASSWORD_MASK = "******"  # noqa: S105 - the mask shown instead of the password
# Device settings kept under the V1 names, shown in OmniSight's camelCase.
SETTING_NAMES = {"transcode_width": "transcodeWidth", "transcode_height": "transcodeHeight",
                 "transcode_kbps": "transcodeKbps"}


class CameraView(TypedDict):
    id: str
    name: str
    rtspUrl: str
    status: str
    ipAddress: str
    location: str | None
    model: str | None
    createdAt: str
    updatedAt: str


class CameraCreatedView(CameraView):
    settings: dict[str, Any]


class CameraDetailView(CameraCreatedView):
    username: str | None
    password: str | None


class CameraUpdatedView(TypedDict):
    id: str
    name: str
    rtspUrl: str
    status: str
    ipAddress: str
    location: str | None
    model: str | None
    settings: dict[str, Any]
    updatedAt: str


class CameraListView(TypedDict):
    cameras: list[CameraView]
    total: int
    page: int
    limit: int
    pages: int


class CameraStatusView(TypedDict):
    id: str
    status: str
    lastSeen: str | None
    streamActive: bool
    recordingActive: bool
    detectionActive: bool


class StreamStartedView(TypedDict):
    id: str
    streamId: str
    status: str
    startedAt: str
    message: str


class StreamStoppedView(TypedDict):
    id: str
    streamId: str
    status: str
    endedAt: str
    message: str


def camera_view(row: DeviceRecord, status: CameraStatus) -> CameraView:
    """A camera as lists show it: no credentials at all."""
    return {
        "id": str(row.id), "name": row.name, "rtspUrl": row.bare_url, "status": status.value,
        "ipAddress": row.host, "location": row.location, "model": row.model,
        "createdAt": iso_ms(row.created_at) or "",
        "updatedAt": iso_ms(row.updated_at or row.created_at) or "",
    }


def camera_created_view(row: DeviceRecord, status: CameraStatus) -> CameraCreatedView:
    settings = {SETTING_NAMES.get(key, key): value for key, value in (row.settings or {}).items()}
    return {**camera_view(row, status), "settings": settings}


def camera_detail_view(row: DeviceRecord, status: CameraStatus) -> CameraDetailView:
    """GET /cameras/:id: the only body with `username` and the masked `password`."""
    return {**camera_created_view(row, status), "username": row.username,
            "password": PASSWORD_MASK if row.has_password else None}


def camera_updated_view(row: DeviceRecord, status: CameraStatus) -> CameraUpdatedView:
    view = camera_created_view(row, status)
    return {key: value for key, value in view.items()  # type: ignore[return-value]
            if key != "createdAt"}


def camera_list_view(page: CameraPage, number: int, limit: int) -> CameraListView:
    return {
        "cameras": [camera_view(row, status) for row, status in page.rows],
        "total": page.total, "page": number, "limit": limit,
        "pages": math.ceil(page.total / limit) if page.total else 0,
    }
