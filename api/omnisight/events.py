"""OmniSight events: listing with filters and pages, one event with its camera, segment and
detected objects, a camera's events, integrators' `custom` events, and event thumbnails
(docs/detection.md, "Events API")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from api.files import serve_file
from api.omnisight.guards import omni_scoped
from api.state import Services, services_of
from core import notify
from core.clock import as_utc, iso_ms, utcnow
from core.devices import DeviceRecord
from core.errors import InvalidInput, NotFound
from core.events import EventFilter, EventRecord, check_type
from core.recording_sessions import parse_id

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


def event_view(event: EventRecord, camera_name: str) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "recordingId": None if event.recording_id is None else str(event.recording_id),
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


async def event_page(services: Services, where: EventFilter, page: int,
                     limit: int) -> dict[str, Any]:
    """The document's paged list shape; also what `GET /recordings/:id/events` answers
    (`EventFilter(recording_id=...)`)."""
    if where.type is not None:
        check_type(where.type)
    if where.start is not None and where.end is not None and where.start > where.end:
        raise InvalidInput("startTime must not be after endTime", details={"field": "startTime"})
    events, total = await services.events.page(where, page, limit)
    names = await _names(services, events)
    return {"events": [event_view(e, names[e.camera_id]) for e in events], "total": total,
            "page": page, "limit": limit, "pages": (total + limit - 1) // limit}


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
    """Events, newest first, filtered by camera, recording, type and time (their start)."""
    where = EventFilter(camera_id, recording_id, type, as_utc(start_time), as_utc(end_time))
    return await event_page(services_of(request.app), where, page, limit)


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
    where = EventFilter(ident, None, type, as_utc(start_time), as_utc(end_time))
    return await event_page(services, where, page, limit)


@get("/events/{event_id:str}", **omni_scoped("events:read"))
async def get_event(
    request: Request[Any, Any, Any], event_id: FromPath[str]
) -> dict[str, Any]:
    """One event with its camera, the recorded segment that holds its moment and its
    detected objects (boxes in pixels of the camera frame)."""
    ident = parse_id(event_id, "Event")
    services = services_of(request.app)
    event = await services.events.get(ident)
    try:
        device = await services.devices.get(event.camera_id)
        camera: dict[str, Any] | None = {"id": str(device.id), "name": device.name,
                                         "location": device.location}
    except NotFound:
        camera = None
    segment = None
    if event.stream_id is not None:
        found = await services.recordings.between(event.stream_id, event.start_at, event.start_at)
        if found:
            seg = found[0]
            segment = {"id": f"{seg.stream_id}:{seg.sequence}", "startTime": iso_ms(seg.start),
                       "endTime": iso_ms(seg.end),
                       "filePath": f"/v2/streams/{seg.stream_id}/hls/{seg.filename}"}
    return {
        **event_view(event, camera["name"] if camera else ""),
        "recording": None if event.recording_id is None else {"id": str(event.recording_id)},
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
    await notify.publish(services.redis, services.settings.redis.namespace, notify.event(
        event.id, device.id, device.name, event.recording_id, event.start_at, event.type,
        event.confidence, thumbnail_path(event)))
    return {**event_view(event, device.name), "details": event.details}


@get("/media/thumbnails/events/{event_id:str}", **omni_scoped("events:read"))
async def event_thumbnail(request: Request[Any, Any, Any],
                          event_id: FromPath[str]) -> Response[Any]:
    """The JPEG of the frame that opened the event (640 px wide, no boxes drawn)."""
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
