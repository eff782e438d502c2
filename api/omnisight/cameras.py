"""OmniSight cameras: the V1 devices under another shape (one table, one service).

Starting a camera here is the same one ingest as the guide's start-stream; a camera created
here is a device there and the other way round.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Annotated, Any

from litestar import Request, Router, delete, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from api.omnisight.camera_schemas import CameraCreateBody, CameraUpdateBody
from api.omnisight.camera_views import (
    CameraCreatedView,
    CameraDetailView,
    CameraListView,
    CameraStatusView,
    CameraUpdatedView,
    StreamStartedView,
    StreamStoppedView,
    camera_created_view,
    camera_detail_view,
    camera_list_view,
    camera_updated_view,
)
from api.omnisight.guards import omni_scoped
from api.omnisight.views import MessageView
from api.state import Services, services_of
from core.clock import iso_ms, utcnow
from core.devices import CameraStatus, DeviceChanges, camera_status
from core.errors import Conflict, InvalidInput
from core.stream_states import StreamState

READ, WRITE, STREAM = "cameras:read", "cameras:write", "streams:write"


def _camera_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"id must be a UUID, got {value[:64]!r}",
                           details={"field": "id"}) from None


async def _status(services: Services, camera_id: uuid.UUID) -> CameraStatus:
    stream = await services.streams.active_for_camera(camera_id)
    return camera_status(None if stream is None else stream.state)


def _changes(data: CameraCreateBody | CameraUpdateBody,
             current: dict[str, Any] | None = None) -> DeviceChanges:
    """The device changes of a body; `settings` are merged key by key into ``current``
    (a key sent as null is removed)."""
    settings = None if data.settings is None else {**(current or {}), **data.settings.given()}
    return DeviceChanges(
        name=data.name, rtsp_url=data.rtsp_url, location=data.location,
        username=data.username, password=data.password, ip_address=data.ip_address,
        model=data.model, settings=settings,
    )


@get("/", **omni_scoped(READ))
async def list_cameras(
    request: Request[Any, Any, Any],
    status: Annotated[CameraStatus | None, QueryParameter()] = None,
    location: Annotated[str | None, QueryParameter(max_length=255)] = None,
    page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
) -> CameraListView:
    """Cameras, oldest first; `status` is online (LIVE), error (ERROR) or offline."""
    found = await services_of(request.app).devices.cameras(status, location, page, limit)
    return camera_list_view(found, page, limit)


@post("/", status_code=201, **omni_scoped(WRITE))
async def create_camera(
    request: Request[Any, Any, Any], data: JSONBody[CameraCreateBody]
) -> CameraCreatedView:
    """Register a camera (it is a V1 device too). The password is kept encrypted."""
    row = await services_of(request.app).devices.create(_changes(data))
    return camera_created_view(row, CameraStatus.OFFLINE)


@get("/{camera_id:str}", **omni_scoped(READ))
async def get_camera(request: Request[Any, Any, Any], camera_id: FromPath[str]) -> CameraDetailView:
    """One camera, with its user name and the password masked as `******`."""
    services = services_of(request.app)
    ident = _camera_id(camera_id)
    row = await services.devices.get(ident)
    return camera_detail_view(row, await _status(services, ident))


@put("/{camera_id:str}", **omni_scoped(WRITE))
async def update_camera(
    request: Request[Any, Any, Any], camera_id: FromPath[str], data: JSONBody[CameraUpdateBody]
) -> CameraUpdatedView:
    """Change the fields given; a running stream keeps its URL until it is started again."""
    services = services_of(request.app)
    ident = _camera_id(camera_id)
    current = (await services.devices.get(ident)).settings if data.settings is not None else None
    row = await services.devices.update(ident, _changes(data, current))
    return camera_updated_view(row, await _status(services, ident))


@delete("/{camera_id:str}", status_code=200, **omni_scoped(WRITE))
async def delete_camera(request: Request[Any, Any, Any], camera_id: FromPath[str]) -> MessageView:
    """Delete a camera, stopping its stream first. Recordings and captures stay."""
    services = services_of(request.app)
    ident = _camera_id(camera_id)
    await services.devices.get(ident)
    stream = await services.streams.active_for_camera(ident)
    if stream is not None:
        await services.control.stop(stream.id)
    await services.devices.delete(ident)
    return {"message": "Camera deleted successfully"}


@get("/{camera_id:str}/status", **omni_scoped(READ))
async def get_camera_status(
    request: Request[Any, Any, Any], camera_id: FromPath[str]
) -> CameraStatusView:
    """The camera's status from its stream: last packet, streaming, recording, detection."""
    services = services_of(request.app)
    ident = _camera_id(camera_id)
    await services.devices.get(ident)
    latest = await services.streams.page(None, ident, 1, 0)
    stream = latest.rows[0] if latest.rows else None
    live = stream is not None and stream.state is StreamState.LIVE
    last_seen = (stream.metrics or {}).get("last_packet_at") if stream is not None else None
    recording = False
    if live and stream is not None:
        # Every LIVE stream records: it is recording while its recorder writes segments.
        window = timedelta(seconds=3 * services.settings.media.hls_segment_s + 5)
        segments = await services.recordings.latest(stream.id, 1)
        since = segments[-1].end if segments else (stream.started_at or stream.updated_at)
        recording = since is not None and utcnow() - since <= window
    return {
        "id": str(ident),
        "status": camera_status(None if stream is None else stream.state).value,
        "lastSeen": last_seen,
        "streamActive": live,
        "recordingActive": recording,
        # Detection on, and the owning node reports that it samples the stream.
        "detectionActive": live and stream is not None
        and await services.detection_settings.detection_active(
            ident, stream.metrics, services.settings.media.heartbeat_s, time.time()),
    }


@post("/{camera_id:str}/stream/start", status_code=200, **omni_scoped(STREAM))
async def start_camera_stream(
    request: Request[Any, Any, Any], camera_id: FromPath[str]
) -> StreamStartedView:
    """Start the camera's stream (the guide's start-stream: one ingest per camera) and
    answer once it is LIVE; a second start answers the running stream."""
    services = services_of(request.app)
    ident = _camera_id(camera_id)
    await services.devices.get(ident)
    result = await services.control.start(ident)
    stream = result.stream
    return {"id": str(ident), "streamId": str(stream.id), "status": "active",
            "startedAt": iso_ms(stream.started_at or stream.created_at) or "",
            "message": "Stream started successfully"}


@post("/{camera_id:str}/stream/stop", status_code=200, **omni_scoped(STREAM))
async def stop_camera_stream(
    request: Request[Any, Any, Any], camera_id: FromPath[str]
) -> StreamStoppedView:
    """Stop the camera's stream (409 when it has none)."""
    services = services_of(request.app)
    ident = _camera_id(camera_id)
    await services.devices.get(ident)
    stream = await services.streams.active_for_camera(ident)
    if stream is None:
        raise Conflict("Camera has no active stream",
                       details={"resourceType": "Camera", "resourceId": str(ident)})
    await services.control.stop(stream.id)
    ended = (await services.streams.get(stream.id)).stopped_at or utcnow()
    return {"id": str(ident), "streamId": str(stream.id), "status": "inactive",
            "endedAt": iso_ms(ended) or "", "message": "Stream stopped successfully"}


router = Router(
    path="/cameras",
    route_handlers=[list_cameras, create_camera, get_camera, update_camera, delete_camera,
                    get_camera_status, start_camera_stream, stop_camera_stream],
    tags=["OmniSight: cameras"],
)
