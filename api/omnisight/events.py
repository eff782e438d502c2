"""OmniSight events: listing with filters and pages, one event with its camera, segment and
detected objects, a camera's events, integrators' `custom` events, and event thumbnails
(docs/detection.md, "Events API")."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from api.files import serve_file
from api.omnisight.guards import omni_scoped
from api.omnisight.recording_views import segment_file_path
from api.state import Services, services_of
from core import notify
from core.clock import as_utc, iso_ms, utcnow
from core.devices import DeviceRecord
from core.errors import InvalidInput, NotFound
from core.events import EventFilter, EventRecord, check_type
from core.recording_sessions import SessionRecord, parse_id

Page = Annotated[int, QueryParameter(ge=1, le=1_000_000)]
Limit = Annotated[int, QueryParameter(ge=1, le=100)]
StartTime = Annotated[datetime | None, QueryParameter(
    query="startTime", description="events from this time, ISO 8601 (UTC when no zone)")]
EndTime = Annotated[datetime | None, QueryParameter(
    query="endTime", description="events up to this time, ISO 8601 (UTC when no zone)")]


class CustomEventBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST /events: an event an integrator records on a camera (type `custom`)."""

    camera_id: uuid.UUID
    type: Annotated[str, msgspec.Meta(max_length=16)] = "custom"
    timestamp: datetime | None = None
    confidence: float = 1.0
    description: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    metadata: dict[str, Any] | None = None


def thumbnail_path(event: EventRecord) -> str | None:
    """Where the thumbnail is served (under the OmniSight base, like every path here)."""
    return f"/media/thumbnails/events/{event.id}" if event.thumbnail else None


def event_view(event: EventRecord, camera_name: str,
               recording: SessionRecord | None) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "recordingId": None if recording is None else str(recording.id),
        "cameraId": str(event.camera_id), "cameraName": camera_name,
        "timestamp": iso_ms(event.start_at), "type": event.type,
        "confidence": event.confidence, "thumbnailPath": thumbnail_path(event),
        "createdAt": iso_ms(event.created_at),
    }


async def _camera(services: Services, camera_id: uuid.UUID) -> DeviceRecord:
    try:
        return await services.devices.get(camera_id)
    except NotFound as error:
        raise NotFound(f"Camera {camera_id} not found", details={
            "resourceType": "Camera", "resourceId": str(camera_id)}) from error


async def _names(services: Services, events: list[EventRecord]) -> dict[uuid.UUID, str]:
    names: dict[uuid.UUID, str] = {}
    for camera_id in {event.camera_id for event in events}:
        try:
            names[camera_id] = (await services.devices.get(camera_id)).name
        except NotFound:
            names[camera_id] = ""  # a deleted camera keeps its history
    return names


async def recordings_of(services: Services, events: list[EventRecord]
                        ) -> dict[uuid.UUID, SessionRecord]:
    """Event id -> the recording that holds its moment (computed when read, never stored)."""
    if not events:
        return {}
    sessions = services.recording_sessions
    await sessions.sync()
    held = await sessions.holding((e.camera_id, e.start_at) for e in events)
    return {e.id: held[(e.camera_id, e.start_at)] for e in events
            if (e.camera_id, e.start_at) in held}


def within(record: SessionRecord, where: EventFilter) -> EventFilter | None:
    """`where` narrowed to the events that `record` holds: its camera's, begun between its
    start and its end (None when none can match)."""
    if where.camera_id is not None and where.camera_id != record.camera_id:
        return None
    start = record.start if where.start is None else max(where.start, as_utc(record.start))
    end = where.end if record.end is None else (
        as_utc(record.end) if where.end is None else min(where.end, as_utc(record.end)))
    if end is not None and start > end:
        return None
    return replace(where, camera_id=record.camera_id, start=as_utc(start), end=end)


async def event_page(services: Services, where: EventFilter | None, page: int,
                     limit: int, checked: EventFilter | None = None) -> dict[str, Any]:
    """The document's paged list shape; also what `GET /recordings/:id/events` answers
    (`within(recording, ...)`). `where` None: nothing can match (`checked` is still
    validated)."""
    asked = checked or where
    if asked is not None and asked.type is not None:
        check_type(asked.type)
    if (asked is not None and asked.start is not None and asked.end is not None
            and asked.start > asked.end):
        raise InvalidInput("startTime must not be after endTime", details={"field": "startTime"})
    events: list[EventRecord] = []
    total = 0
    if where is None:
        if page < 1 or not 1 <= limit <= 100:
            await services.events.page(EventFilter(), page, limit)  # the same refusal
    else:
        events, total = await services.events.page(where, page, limit)
    names = await _names(services, events)
    held = await recordings_of(services, events)
    return {"events": [event_view(e, names[e.camera_id], held.get(e.id)) for e in events],
            "total": total, "page": page, "limit": limit, "pages": (total + limit - 1) // limit}


@get("/events", **omni_scoped("events:read"))
async def list_events(
    request: Request[Any, Any, Any],
    camera_id: Annotated[uuid.UUID | None, QueryParameter(query="cameraId")] = None,
    recording_id: Annotated[uuid.UUID | None, QueryParameter(query="recordingId")] = None,
    type: Annotated[str | None, QueryParameter(query="type")] = None,
    start_time: StartTime = None,
    end_time: EndTime = None,
    page: Page = 1, limit: Limit = 10,
) -> dict[str, Any]:
    """Events, newest first, filtered by camera, recording (the events it holds), type and
    time (their start). An unknown recording holds no events."""
    services = services_of(request.app)
    where = EventFilter(camera_id, type, as_utc(start_time), as_utc(end_time))
    if recording_id is None:
        return await event_page(services, where, page, limit)
    await services.recording_sessions.sync()
    try:
        record = await services.recording_sessions.get(recording_id)
    except NotFound:
        return await event_page(services, None, page, limit, checked=where)
    return await event_page(services, within(record, where), page, limit, checked=where)


@get("/cameras/{camera_id:str}/events", **omni_scoped("events:read"))
async def camera_events(
    request: Request[Any, Any, Any], camera_id: FromPath[str],
    type: Annotated[str | None, QueryParameter(query="type")] = None,
    start_time: StartTime = None,
    end_time: EndTime = None,
    page: Page = 1, limit: Limit = 10,
) -> dict[str, Any]:
    """One camera's events (404 for an unknown camera)."""
    ident = parse_id(camera_id, "Camera")
    services = services_of(request.app)
    await _camera(services, ident)
    where = EventFilter(ident, type, as_utc(start_time), as_utc(end_time))
    return await event_page(services, where, page, limit)


@get("/events/{event_id:str}", **omni_scoped("events:read"))
async def get_event(
    request: Request[Any, Any, Any], event_id: FromPath[str]
) -> dict[str, Any]:
    """One event with its camera, the recording and the segment of it that hold its moment,
    and its detected objects (boxes in pixels of the camera frame)."""
    ident = parse_id(event_id, "Event")
    services = services_of(request.app)
    event = await services.events.get(ident)
    try:
        device = await services.devices.get(event.camera_id)
        camera: dict[str, Any] | None = {"id": str(device.id), "name": device.name,
                                         "location": device.location}
    except NotFound:
        camera = None
    record = (await recordings_of(services, [event])).get(event.id)
    segment = None
    if record is not None:
        found = await services.recording_sessions.segment_at(record, event.start_at)
        if found is not None:
            segment = {"id": str(found.id), "startTime": iso_ms(found.start),
                       "endTime": iso_ms(found.end), "filePath": segment_file_path(found)}
    return {
        **event_view(event, camera["name"] if camera else "", record),
        "recording": None if record is None else {
            "id": str(record.id), "type": record.kind, "startTime": iso_ms(record.start),
            "endTime": iso_ms(record.end)},
        "camera": camera,
        "segmentId": segment["id"] if segment else None, "segment": segment,
        "streamId": None if event.stream_id is None else str(event.stream_id),
        "endTime": iso_ms(event.last_seen_at),
        "frameSize": None if event.frame_width is None else {
            "width": event.frame_width, "height": event.frame_height},
        "detectedObjects": list(event.objects), "details": event.details,
        "updatedAt": iso_ms(event.updated_at),
    }


@post("/events", status_code=201, **omni_scoped("events:write"))
async def create_event(request: Request[Any, Any, Any],
                       data: JSONBody[CustomEventBody]) -> dict[str, Any]:
    """Record an integrator's event on a camera: type `custom` only (detection makes the
    others); published live like detected events."""
    if data.type != "custom":
        raise InvalidInput("only custom events can be posted; detection makes the others",
                           details={"field": "type"})
    services = services_of(request.app)
    device = await _camera(services, data.camera_id)
    at = as_utc(data.timestamp) if data.timestamp is not None else utcnow()
    details = {key: value for key, value in (("description", data.description),
                                             ("metadata", data.metadata)) if value is not None}
    event = await services.events.create_custom(device.id, at, data.confidence, details)
    record = (await recordings_of(services, [event])).get(event.id)
    await notify.publish(services.redis, services.settings.redis.namespace, notify.event(
        event.id, device.id, device.name, None if record is None else record.id,
        event.start_at, event.type, event.confidence, thumbnail_path(event)))
    return {**event_view(event, device.name, record), "details": event.details}


@get("/media/thumbnails/events/{event_id:str}", **omni_scoped("events:read"))
async def event_thumbnail(request: Request[Any, Any, Any],
                          event_id: FromPath[str]) -> Response[Any]:
    """The JPEG of the frame whose boxes the event lists (640 px wide, no boxes drawn)."""
    ident = parse_id(event_id, "Event")
    services = services_of(request.app)
    event = await services.events.get(ident)
    if not event.thumbnail:
        raise NotFound(f"Event {ident} has no thumbnail",
                       details={"resourceType": "Thumbnail", "resourceId": str(ident)})
    return serve_file(request, services.events.thumbnail_path(event.id), "image/jpeg",
                      f"event_{event.id}.jpg")


router = Router(path="/", route_handlers=[
    list_events, camera_events, get_event, create_event, event_thumbnail,
], tags=["OmniSight: events"])
