"""Events (OmniSight `/events`): what detection found on a camera, merged over time, and
events an integrator posts (`custom`). The one home of `vas_event`.

Merge rule (the same as `media.detection.events`, kept in the database so that any number
of detection workers share it): a detection of a type on a camera joins the newest event of
that type and camera whose last detection is at most `cooldown` seconds before it (or after
it: jobs may be taken out of order); otherwise it opens a new event. Joining raises the
event's confidence to the best seen and, when the new detection is more confident, takes its
objects and its frame as the thumbnail. Callers serialise merges per camera and type (a Redis
lock in jobs/detection.py).

A thumbnail is the JPEG of the frame whose objects the event lists (the most confident
detection so far), as the camera sent it scaled to 640 px wide, without boxes drawn (the boxes
are data, in camera-frame pixels), kept under `<data dir>/events/<id>.jpg`. It is replaced by
writing a temporary file and renaming it over the old one (a reader gets the old file or the
new one, never half of one), then the objects change in the database. A client that reads
the event and then its thumbnail while a better detection is merged in between can get the
newer frame: `updatedAt` changes with every merge (docs/detection.md). A detection without a
frame replaces the objects only of an event that has no thumbnail.

The recording an event belongs to is not stored: it is whichever recording holds the event's
moment when it is read (`RecordingSessionService.holding`; docs/detection.md, "Events and
recordings"). The table's `recording_id` column is left unused.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.clock import as_utc, utcnow
from core.errors import InvalidInput, NotFound
from core.tables import Event

EVENT_TYPES = ("motion", "person", "vehicle", "animal", "custom")
DETECTED_TYPES = EVENT_TYPES[:4]
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event. `objects` holds `{id, type, confidence, boundingBox: {x, y, width, height}}`
    in pixels of the camera frame (`frame_width` x `frame_height`)."""

    id: uuid.UUID
    camera_id: uuid.UUID
    stream_id: uuid.UUID | None
    type: str
    source: str
    start_at: datetime
    last_seen_at: datetime
    confidence: float
    objects: tuple[dict[str, Any], ...]
    frame_width: int | None
    frame_height: int | None
    thumbnail: bool
    details: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What `GET /events` may filter on (None: any)."""

    camera_id: uuid.UUID | None = None
    type: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def _json(value: Any, empty: Any) -> Any:
    if isinstance(value, str):
        value = json.loads(value)
    return empty if value is None else value


def _record(row: dict[str, Any]) -> EventRecord:
    return EventRecord(
        id=row["id"], camera_id=row["camera_id"], stream_id=row["stream_id"],
        type=row["type"], source=row["source"],
        start_at=as_utc(row["start_at"]), last_seen_at=as_utc(row["last_seen_at"]),
        confidence=float(row["confidence"]), objects=tuple(_json(row["detected_objects"], [])),
        frame_width=row["frame_width"], frame_height=row["frame_height"],
        thumbnail=bool(row["thumbnail"]), details=dict(_json(row["details"], {})),
        created_at=as_utc(row["created_at"]), updated_at=as_utc(row["updated_at"]),
    )


def check_type(value: str) -> str:
    """An event type of the document, or VALIDATION_ERROR."""
    if value not in EVENT_TYPES:
        raise InvalidInput(f"type must be one of: {', '.join(EVENT_TYPES)}",
                           details={"field": "type"})
    return value


class EventService:
    """Records, merges, lists and removes events and their thumbnails."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "events"

    def thumbnail_path(self, event_id: uuid.UUID) -> Path:
        return self.directory / f"{event_id}.jpg"

    async def get(self, event_id: uuid.UUID) -> EventRecord:
        row = await Event.select().where(Event.id == event_id).first()
        if row is None:
            raise NotFound(f"Event {event_id} not found",
                           details={"resourceType": "Event", "resourceId": str(event_id)})
        return _record(row)

    async def page(
        self, where: EventFilter, page: int, limit: int
    ) -> tuple[list[EventRecord], int]:
        """One page of events, newest first, and how many match in all."""
        if page < 1 or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"page must be >= 1 and limit 1..{MAX_LIMIT}",
                               details={"field": "page" if page < 1 else "limit"})
        conditions = []
        if where.camera_id is not None:
            conditions.append(Event.camera_id == where.camera_id)
        if where.type is not None:
            conditions.append(Event.type == check_type(where.type))
        if where.start is not None:
            conditions.append(Event.start_at >= where.start)
        if where.end is not None:
            conditions.append(Event.start_at <= where.end)
        query = Event.select().order_by(Event.start_at, ascending=False)
        count = Event.count()
        if conditions:
            query = query.where(*conditions)
            count = count.where(*conditions)
        rows = await query.offset((page - 1) * limit).limit(limit)
        return [_record(row) for row in rows], int(await count)

    async def count_since(self, since: datetime) -> dict[str, int]:
        """Events that began since `since`, by type (for `/system/status`)."""
        return await count_since(since)

    async def record_detection(
        self, camera_id: uuid.UUID, stream_id: uuid.UUID | None, event_type: str,
        at: datetime, confidence: float, objects: list[dict[str, Any]],
        frame_size: tuple[int, int], jpeg: bytes | None, cooldown_s: float,
    ) -> tuple[EventRecord, bool]:
        """Merge one detection into its event (rule in the module docstring); the event and
        whether it was opened by this detection."""
        if event_type not in DETECTED_TYPES:
            raise InvalidInput(f"not a detected type: {event_type}")
        window = timedelta(seconds=cooldown_s)
        row = await Event.select().where(
            (Event.camera_id == camera_id) & (Event.type == event_type)
            & (Event.source == "detector") & (Event.last_seen_at >= at - window)
            & (Event.start_at <= at + window)
        ).order_by(Event.last_seen_at, ascending=False).first()
        now = utcnow()
        if row is not None:
            current = _record(row)
            values: dict[Any, Any] = {Event.updated_at: now}
            if at > current.last_seen_at:
                values[Event.last_seen_at] = at
            if confidence > current.confidence:
                values[Event.confidence] = confidence
                # The objects and the thumbnail are of one frame: both move to the better
                # one, the file first (atomically) so a listed box never has an older frame.
                if jpeg is not None:
                    self._write_thumbnail(current.id, jpeg)
                    values[Event.thumbnail] = True
                    values[Event.detected_objects] = objects
                elif not current.thumbnail:
                    values[Event.detected_objects] = objects
            await Event.update(values).where(Event.id == current.id)
            return await self.get(current.id), False
        event_id = uuid.uuid4()
        if jpeg is not None:
            self._write_thumbnail(event_id, jpeg)
        await Event.insert(Event(
            id=event_id, camera_id=camera_id, stream_id=stream_id, type=event_type,
            source="detector", start_at=at, last_seen_at=at, confidence=confidence,
            detected_objects=objects, frame_width=frame_size[0], frame_height=frame_size[1],
            thumbnail=jpeg is not None, details={}, created_at=now, updated_at=now,
        ))
        return await self.get(event_id), True

    async def create_custom(self, camera_id: uuid.UUID, at: datetime, confidence: float,
                            details: dict[str, Any]) -> EventRecord:
        """An event an integrator posts (type `custom`)."""
        if not 0 <= confidence <= 1:
            raise InvalidInput("confidence must be between 0 and 1",
                               details={"field": "confidence"})
        event_id, now = uuid.uuid4(), utcnow()
        await Event.insert(Event(
            id=event_id, camera_id=camera_id, type="custom", source="custom", start_at=at,
            last_seen_at=at, confidence=confidence, detected_objects=[], thumbnail=False,
            details=details, created_at=now, updated_at=now,
        ))
        return await self.get(event_id)

    async def purge_before(self, cutoff: datetime, camera_id: uuid.UUID | None = None) -> int:
        """Retention: remove events (and thumbnails) whose last moment is before `cutoff`, of
        every camera or of `camera_id` alone."""
        query = Event.select(Event.id, Event.thumbnail).where(Event.last_seen_at < cutoff)
        if camera_id is not None:
            query = query.where(Event.camera_id == camera_id)
        rows = await query
        if rows:  # rows first: no listed event ever points to a removed file
            await Event.delete().where(Event.id.is_in([row["id"] for row in rows]))
        for row in rows:
            if row["thumbnail"]:
                self.thumbnail_path(row["id"]).unlink(missing_ok=True)
        return len(rows)

    def _write_thumbnail(self, event_id: uuid.UUID, jpeg: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.thumbnail_path(event_id)
        partial = path.with_name(f"{event_id}.{uuid.uuid4().hex}.part")
        try:
            partial.write_bytes(jpeg)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


async def count_since(since: datetime) -> dict[str, int]:
    """Events that began since `since`, by type (every type, zeros included)."""
    rows = await Event.select(Event.type).where(Event.start_at >= since)
    counts = dict.fromkeys(EVENT_TYPES, 0)
    for row in rows:
        counts[row["type"]] = counts.get(row["type"], 0) + 1
    return counts
