"""OmniSight recordings: sessions over the HLS recorder (docs/omnisight.md, "Recordings").

Every route needs `recordings:read` or `recordings:write`; the `user` role has both, and
users see the recordings of every camera of the deployment (as they see every camera).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Router, delete, get, post
from litestar.params import FromPath, QueryParameter

from api.omnisight.events import event_page, thumbnail_path, within
from api.omnisight.guards import omni_scoped
from api.omnisight.recording_views import (
    page_view,
    recording_detail_view,
    recording_item_view,
    segment_thumbnail_path,
    segment_view,
)
from api.omnisight.responses import error_responses
from api.state import Services, services_of
from core.clock import as_utc, iso_ms
from core.devices import DeviceRecord
from core.errors import InvalidInput, NotFound
from core.events import EventFilter
from core.recording_sessions import (
    STATUSES,
    SessionFilter,
    parse_id,
    resolve_settings,
    stream_resolution,
    with_resolution,
)

READ, WRITE = "recordings:read", "recordings:write"
DETAIL_SEGMENTS = 100  # the rest through GET /recordings/:id/segments
DETAIL_EVENTS = 100  # the rest through GET /recordings/:id/events
Page = Annotated[int, QueryParameter(ge=1, le=1_000_000)]
Limit = Annotated[int, QueryParameter(ge=1, le=100)]

ERRORS = error_responses(409, 413, 502, 503, 504)


async def _camera(services: Services, camera_id: uuid.UUID) -> DeviceRecord | None:
    try:
        return await services.devices.get(camera_id)
    except NotFound:
        return None  # the camera was deleted; its recordings stay


@get("/recordings", **omni_scoped(READ), responses=ERRORS)
async def list_recordings(
    request: Request[Any, Any, Any],
    camera_id: Annotated[uuid.UUID | None, QueryParameter(name="cameraId")] = None,
    start_time: Annotated[datetime | None, QueryParameter(name="startTime")] = None,
    end_time: Annotated[datetime | None, QueryParameter(name="endTime")] = None,
    status: Annotated[str | None, QueryParameter(max_length=16)] = None,
    page: Page = 1,
    limit: Limit = 10,
) -> dict[str, Any]:
    """Recordings (manual and continuous) overlapping [startTime, endTime], newest first."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of: {', '.join(STATUSES)}",
                           details={"field": "status"})
    services = services_of(request.app)
    sessions = services.recording_sessions
    await sessions.sync()
    found = await sessions.page(
        SessionFilter(camera_id, status, as_utc(start_time), as_utc(end_time)), page, limit)
    names: dict[uuid.UUID, str | None] = {}
    items = []
    for record in found.items:
        if record.camera_id not in names:
            camera = await _camera(services, record.camera_id)
            names[record.camera_id] = None if camera is None else camera.name
        first, _ = await sessions.segments(record.id, 1, 1)
        thumb = segment_thumbnail_path(first[0]) if first else None
        items.append(recording_item_view(record, names[record.camera_id], thumb))
    return page_view("recordings", items, found.total, page, limit)


@get("/recordings/{recording_id:str}", **omni_scoped(READ), responses=ERRORS)
async def get_recording(request: Request[Any, Any, Any],
                        recording_id: FromPath[str]) -> dict[str, Any]:
    """A recording with its camera, its first segments and its events."""
    services = services_of(request.app)
    await services.recording_sessions.sync()
    record = await services.recording_sessions.get(parse_id(recording_id, "Recording"))
    segments, _ = await services.recording_sessions.segments(record.id, 1, DETAIL_SEGMENTS)
    where = within(record, EventFilter())
    events = [] if where is None else (await services.events.page(where, 1, DETAIL_EVENTS))[0]
    summaries = [{"id": str(e.id), "timestamp": iso_ms(e.start_at), "type": e.type,
                  "thumbnailPath": thumbnail_path(e)} for e in events]
    return recording_detail_view(record, await _camera(services, record.camera_id), segments,
                                 summaries)


@get("/recordings/{recording_id:str}/segments", **omni_scoped(READ), responses=ERRORS)
async def list_segments(request: Request[Any, Any, Any], recording_id: FromPath[str],
                        page: Page = 1, limit: Limit = 10) -> dict[str, Any]:
    """A recording's segments, oldest first."""
    sessions = services_of(request.app).recording_sessions
    items, total = await sessions.segments(parse_id(recording_id, "Recording"), page, limit)
    return page_view("segments", [segment_view(s) for s in items], total, page, limit)


@get("/recordings/{recording_id:str}/events", **omni_scoped("events:read"), responses=ERRORS)
async def list_recording_events(
    request: Request[Any, Any, Any], recording_id: FromPath[str],
    event_type: Annotated[str | None, QueryParameter(name="type", max_length=16)] = None,
    page: Page = 1, limit: Limit = 10,
) -> dict[str, Any]:
    """The events a recording holds (its camera's events that began between its start and
    its end), paginated like `GET /events` and the same as `GET /events?recordingId=`."""
    services = services_of(request.app)
    await services.recording_sessions.sync()
    record = await services.recording_sessions.get(parse_id(recording_id, "Recording"))
    asked = EventFilter(type=event_type)
    return await event_page(services, within(record, asked), page, limit, checked=asked)


@post("/cameras/{camera_id:str}/recordings/start", status_code=201, **omni_scoped(WRITE),
      responses=ERRORS)
async def start_recording(request: Request[Any, Any, Any],
                          camera_id: FromPath[str]) -> dict[str, Any]:
    """Start a recording; a camera that is not streaming is started first."""
    services = services_of(request.app)
    camera = parse_id(camera_id, "Camera")
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidInput("The body must be JSON") from exc
    if not isinstance(body, dict) or set(body) - {"settings"}:
        raise InvalidInput("The body is {\"settings\": {segmentDuration, format, resolution}}",
                           details={"field": "settings"})
    await services.devices.get(camera)
    defaults = (await services.system_settings.get()).recording
    wanted = resolve_settings(body.get("settings"), defaults)
    stream = (await services.control.start(camera)).stream
    settings = with_resolution(wanted, stream_resolution(stream.codec_config))
    record = await services.recording_sessions.create(camera, stream.id, settings)
    return {"id": str(record.id), "cameraId": str(camera),
            "startTime": recording_item_view(record, None, None)["startTime"],
            "status": record.status, "settings": recording_item_view(record, None, None)[
                "settings"], "message": "Recording started successfully"}


@post("/recordings/{recording_id:str}/stop", status_code=200, **omni_scoped(WRITE),
      responses=ERRORS)
async def stop_recording(request: Request[Any, Any, Any],
                         recording_id: FromPath[str]) -> dict[str, Any]:
    """End a manual recording now (the stream keeps running)."""
    services = services_of(request.app)
    sessions = services.recording_sessions
    await sessions.sync()
    record = await sessions.stop(parse_id(recording_id, "Recording"))
    # The last segments are cut by a worker; housekeeping re-runs it if this is lost.
    await services.jobs.export_recording(record.id)
    view = recording_item_view(record, None, None)
    return {"id": view["id"], "cameraId": view["cameraId"], "startTime": view["startTime"],
            "endTime": view["endTime"], "duration": view["duration"], "status": record.status,
            "message": "Recording stopped successfully"}


@delete("/recordings/{recording_id:str}", status_code=200, **omni_scoped(WRITE), responses=ERRORS)
async def delete_recording(request: Request[Any, Any, Any],
                           recording_id: FromPath[str]) -> dict[str, str]:
    """Remove a finished recording's files and rows (bookmarks and snapshots stay)."""
    sessions = services_of(request.app).recording_sessions
    await sessions.sync()
    await sessions.delete(parse_id(recording_id, "Recording"))
    return {"message": "Recording deleted successfully"}


router = Router(path="/", route_handlers=[
    list_recordings, get_recording, list_segments, list_recording_events, start_recording,
    stop_recording, delete_recording,
], tags=["OmniSight: recordings"])
