"""OmniSight recordings: sessions over the HLS recorder of a stream (docs/omnisight.md,
"Recordings").

A session is a camera, a stream, a start and an end, settings (`segmentDuration`, `format`,
`resolution`) and a status. `manual` sessions are started and stopped through the API; every
stream that went LIVE also has a `continuous` session (its id is the stream's id) covering
the stream's own HLS recording, so that the API shows everything that is on disk. Both are
kept in step with their streams by `sync()`: a session whose stream is no longer active ends
when the stream stopped.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from core import notify
from core.clock import as_utc, utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.recording_segments import SegmentRecord, segment_record
from core.recordings import RecordingIndex
from core.stream_states import ACTIVE_STATES
from core.system_settings import RANGES, RECORDING_FORMATS, RecordingDefaults
from core.tables import HlsSegment, RecordingSegment, RecordingSession, Stream

logger = logging.getLogger(__name__)

STATUSES = ("recording", "completed", "failed")
DELETED = "deleted"
SEGMENT_DURATION_RANGE = tuple(int(v) for v in RANGES["recording.defaultSegmentDuration"])
Publisher = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """What a recording's segments look like."""

    segment_duration_s: int
    format: str
    resolution: str | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One recording session."""

    id: uuid.UUID
    camera_id: uuid.UUID
    stream_id: uuid.UUID
    kind: str
    status: str
    start: datetime
    end: datetime | None
    settings: SessionSettings
    error: str | None
    exported_until: datetime | None
    segment_count: int
    created_at: datetime
    updated_at: datetime

    def duration_s(self, now: datetime | None = None) -> float:
        """Seconds from start to end (to now while recording)."""
        end = self.end or now or utcnow()
        return max(0.0, (end - self.start).total_seconds())


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """`GET /recordings` filters: a session matches when it overlaps [start, end]."""

    camera_id: uuid.UUID | None = None
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionPage:
    """A page of sessions and the total that match."""

    items: list[SessionRecord]
    total: int


def _record(row: dict[str, Any], count: int) -> SessionRecord:
    return SessionRecord(
        id=row["id"], camera_id=row["camera_id"], stream_id=row["stream_id"], kind=row["kind"],
        status=row["status"], start=row["start_at"], end=row["end_at"],
        settings=SessionSettings(int(row["segment_duration"]), row["format"], row["resolution"]),
        error=row["error"], exported_until=row["exported_until"], segment_count=count,
        created_at=row["created_at"], updated_at=row["updated_at"])


def stream_resolution(codec_config: dict[str, Any] | None) -> str | None:
    """`WIDTHxHEIGHT` of what the camera really sends, once known."""
    video = (codec_config or {}).get("video") or {}
    width, height = video.get("width"), video.get("height")
    return f"{width}x{height}" if width and height else None


def resolve_settings(sent: Any, defaults: RecordingDefaults) -> SessionSettings:
    """The settings of a new recording: what was sent, checked, else the system defaults.
    `resolution` is kept as sent; `with_resolution` checks it against the stream."""
    if sent is None:
        sent = {}
    if not isinstance(sent, dict):
        raise InvalidInput("settings must be an object", details={"field": "settings"})
    unknown = sorted(set(sent) - {"segmentDuration", "format", "resolution"})
    if unknown:
        raise InvalidInput(f"settings.{unknown[0]} is not a recording setting",
                           details={"field": f"settings.{unknown[0]}"})
    duration = sent.get("segmentDuration", defaults.default_segment_duration_s)
    low, high = SEGMENT_DURATION_RANGE
    if isinstance(duration, bool) or not isinstance(duration, int) or not low <= duration <= high:
        raise InvalidInput(f"settings.segmentDuration must be an integer between {low} and "
                           f"{high} seconds", details={"field": "settings.segmentDuration"})
    fmt = sent.get("format", defaults.default_format)
    if fmt not in RECORDING_FORMATS:
        raise InvalidInput(f"settings.format must be one of: {', '.join(RECORDING_FORMATS)}",
                           details={"field": "settings.format"})
    resolution = sent.get("resolution")
    if resolution is not None and not isinstance(resolution, str):
        raise InvalidInput("settings.resolution must be a string like 1920x1080",
                           details={"field": "settings.resolution"})
    return SessionSettings(duration, str(fmt), resolution)


def with_resolution(settings: SessionSettings, real: str | None) -> SessionSettings:
    """`settings` with the stream's real resolution; a different one sent is refused."""
    if settings.resolution is not None and settings.resolution != real:
        # Segments are remuxed, never re-encoded: the camera's own size is the only one.
        raise InvalidInput(
            f"settings.resolution must be the camera's real resolution {real} (no scaling)",
            details={"field": "settings.resolution", "resolution": real})
    return replace(settings, resolution=real)


def parse_id(text: str, kind: str) -> uuid.UUID:
    """An id from a request path: a UUID, else 404 (ids never reach the file system)."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound(f"{kind} {text[:64]!r} not found",
                       details={"resourceType": kind, "resourceId": text[:64]}) from None


class RecordingSessionService:
    """The one home of `vas_recording_session` and `vas_recording_segment`."""

    def __init__(self, root: Path, hls: RecordingIndex, publish: Publisher | None = None) -> None:
        self.root = root  # <data dir>/recordings/sessions
        self._hls = hls
        self._publish = publish

    def directory(self, session_id: uuid.UUID) -> Path:
        """Where a session's files live (built from the row's UUID, never request text)."""
        return self.root / str(session_id)

    async def _announce(self, record: SessionRecord) -> None:
        if self._publish is None:
            return
        try:
            await self._publish(notify.recording_status(
                record.id, record.camera_id, record.status, record.start, record.end))
        except Exception:  # a lost notification must not fail the recording
            logger.exception("recording_status for %s not published", record.id)

    async def sync(self) -> None:
        """Continuous sessions for streams that went LIVE; end sessions whose stream ended."""
        started = await Stream.select(Stream.id, Stream.camera_id, Stream.started_at).where(
            Stream.started_at.is_not_null())
        known = {r["id"] for r in await RecordingSession.select(RecordingSession.id).where(
            RecordingSession.kind == "continuous")}
        now = utcnow()
        for row in started:
            if row["id"] in known:
                continue
            await RecordingSession.insert(RecordingSession(
                id=row["id"], camera_id=row["camera_id"], stream_id=row["id"],
                kind="continuous", status="recording", start_at=row["started_at"],
                segment_duration=6, format="ts", created_at=now, updated_at=now,
            )).on_conflict(action="DO NOTHING")
        open_rows = await RecordingSession.select().where(RecordingSession.status == "recording")
        if not open_rows:
            return
        streams = {r["id"]: r for r in await Stream.select(
            Stream.id, Stream.state, Stream.stopped_at, Stream.error_code, Stream.updated_at,
        ).where(Stream.id.is_in([r["stream_id"] for r in open_rows]))}
        for row in open_rows:
            stream = streams.get(row["stream_id"])
            if stream is not None and stream["state"] in {s.value for s in ACTIVE_STATES}:
                continue
            end = (stream or {}).get("stopped_at") or (stream or {}).get("updated_at") or now
            failed = stream is None or (stream["error_code"] is not None)
            await self._finish(row["id"], max(end, row["start_at"]),
                               "failed" if failed else "completed",
                               "the stream ended with an error" if failed else None)

    async def _finish(self, session_id: uuid.UUID, end: datetime, status: str,
                      error: str | None) -> SessionRecord | None:
        changed = await RecordingSession.update({
            RecordingSession.status: status, RecordingSession.end_at: end,
            RecordingSession.error: error, RecordingSession.updated_at: utcnow(),
        }).where((RecordingSession.id == session_id)
                 & (RecordingSession.status == "recording")).returning(RecordingSession.id)
        if not changed:
            return None  # someone else ended it first
        record = await self.get(session_id)
        await self._announce(record)
        return record

    async def create(self, camera_id: uuid.UUID, stream_id: uuid.UUID,
                     settings: SessionSettings) -> SessionRecord:
        """A manual recording on a LIVE stream, starting now."""
        now = utcnow()
        session_id = uuid.uuid4()
        await RecordingSession.insert(RecordingSession(
            id=session_id, camera_id=camera_id, stream_id=stream_id, kind="manual",
            status="recording", start_at=now, segment_duration=settings.segment_duration_s,
            format=settings.format, resolution=settings.resolution, created_at=now,
            updated_at=now))
        record = await self.get(session_id)
        await self._announce(record)
        return record

    async def get(self, session_id: uuid.UUID) -> SessionRecord:
        """A session (404 for unknown and deleted ones)."""
        row = await RecordingSession.select().where(
            (RecordingSession.id == session_id) & (RecordingSession.status != DELETED)).first()
        if row is None:
            raise NotFound(f"Recording {session_id} not found",
                           details={"resourceType": "Recording", "resourceId": str(session_id)})
        return _record(row, await self._count(row))

    async def _count(self, row: dict[str, Any]) -> int:
        if row["kind"] == "continuous":
            return int(await HlsSegment.count().where(HlsSegment.stream_id == row["stream_id"]))
        return int(await RecordingSegment.count().where(
            RecordingSegment.session_id == row["id"]))

    async def page(self, where: SessionFilter, page: int, limit: int) -> SessionPage:
        """Sessions matching `where`, newest first."""
        query: Any = RecordingSession.status != DELETED
        if where.camera_id is not None:
            query &= RecordingSession.camera_id == where.camera_id
        if where.status is not None:
            query &= RecordingSession.status == where.status
        if where.start is not None:
            query &= (RecordingSession.end_at.is_null()) | (RecordingSession.end_at >= where.start)
        if where.end is not None:
            query &= RecordingSession.start_at <= where.end
        total = int(await RecordingSession.count().where(query))
        rows = await RecordingSession.select().where(query).order_by(
            RecordingSession.start_at, ascending=False).order_by(RecordingSession.id).offset(
            (page - 1) * limit).limit(limit)
        return SessionPage([_record(r, await self._count(r)) for r in rows], total)

    async def stop(self, session_id: uuid.UUID) -> SessionRecord:
        """End a manual recording now; its last segments are exported afterwards."""
        record = await self.get(session_id)
        if record.kind == "continuous":
            raise Conflict("A continuous recording ends when its camera's stream stops",
                           details={"resourceId": str(session_id)})
        if record.status != "recording":
            raise Conflict(f"Recording {session_id} is already {record.status}",
                           details={"status": record.status})
        finished = await self._finish(session_id, utcnow(), "completed", None)
        return finished or await self.get(session_id)

    async def delete(self, session_id: uuid.UUID) -> None:
        """Remove a finished session's own files and rows. For a continuous session those are
        the recorder's segments of its stream; bookmarks and snapshots keep files of their own
        and are not touched."""
        record = await self.get(session_id)
        if record.status == "recording":
            raise Conflict("Stop the recording before deleting it",
                           details={"status": record.status})
        if record.kind == "continuous":
            await self._hls.purge_stream(record.stream_id)
            await RecordingSession.update({RecordingSession.status: DELETED,
                                           RecordingSession.updated_at: utcnow()}).where(
                RecordingSession.id == session_id)
            return
        shutil.rmtree(self.directory(session_id), ignore_errors=True)
        await RecordingSegment.delete().where(RecordingSegment.session_id == session_id)
        await RecordingSession.delete().where(RecordingSession.id == session_id)

    async def segments(self, session_id: uuid.UUID, page: int, limit: int
                       ) -> tuple[list[SegmentRecord], int]:
        """A page of a session's segments, oldest first, and their total."""
        record = await self.get(session_id)
        if record.kind == "continuous":
            return await self._hls_segments(record, page, limit)
        where = RecordingSegment.session_id == session_id
        total = int(await RecordingSegment.count().where(where))
        rows = await RecordingSegment.select().where(where).order_by(
            RecordingSegment.sequence).offset((page - 1) * limit).limit(limit)
        return [segment_record(r) for r in rows], total

    async def segment_file(self, segment_id: uuid.UUID, thumbnail: bool = False
                           ) -> tuple[SegmentRecord, Path]:
        """A manual recording's segment and the path of its file (or its thumbnail), from its
        row (404 for unknown ids and files no longer on disk)."""
        row = await RecordingSegment.select().where(RecordingSegment.id == segment_id).first()
        name = None if row is None else row["thumbnail" if thumbnail else "filename"]
        if row is None or name is None:
            kind = "Thumbnail" if thumbnail else "Segment"
            raise NotFound(f"{kind} {segment_id} not found",
                           details={"resourceType": "Segment", "resourceId": str(segment_id)})
        return segment_record(row), self.directory(row["session_id"]) / name

    async def _hls_segments(self, record: SessionRecord, page: int, limit: int
                            ) -> tuple[list[SegmentRecord], int]:
        where = HlsSegment.stream_id == record.stream_id
        total = int(await HlsSegment.count().where(where))
        rows = await HlsSegment.select().where(where).order_by(HlsSegment.sequence).offset(
            (page - 1) * limit).limit(limit)
        resolution = await self._resolution(record)
        return [SegmentRecord.of_hls(record.id, r, resolution) for r in rows], total

    async def _resolution(self, record: SessionRecord) -> str | None:
        if record.settings.resolution is not None:
            return record.settings.resolution
        codec = await Stream.select(Stream.codec_config).where(
            Stream.id == record.stream_id).output(load_json=True).first()
        return stream_resolution((codec or {}).get("codec_config"))

    async def holding(self, moments: Iterable[tuple[uuid.UUID, datetime]]
                      ) -> dict[tuple[uuid.UUID, datetime], SessionRecord]:
        """For each (camera, moment): the recording that holds it (docs/detection.md,
        "Events and recordings"), if any. Call `sync()` first."""
        wanted = set(moments)
        if not wanted:
            return {}
        rows = await RecordingSession.select().where(
            (RecordingSession.status != DELETED)
            & RecordingSession.camera_id.is_in(list({camera for camera, _ in wanted}))
            & (RecordingSession.start_at <= max(at for _, at in wanted))
            & (RecordingSession.end_at.is_null()
               | (RecordingSession.end_at >= min(at for _, at in wanted))))
        found: dict[tuple[uuid.UUID, datetime], SessionRecord] = {}
        records: dict[uuid.UUID, SessionRecord] = {}
        for camera, at in wanted:
            row = holder(rows, camera, at)
            if row is not None:
                if row["id"] not in records:
                    records[row["id"]] = _record(row, await self._count(row))
                found[(camera, at)] = records[row["id"]]
        return found

    async def segment_at(self, record: SessionRecord, moment: datetime) -> SegmentRecord | None:
        """The segment of `record` that holds `moment` (None until it is written). A moment
        of a manual recording before its first keyframe (where its first segment begins) is
        given the first segment."""
        if record.kind == "continuous":
            row = await HlsSegment.select().where(
                (HlsSegment.stream_id == record.stream_id) & (HlsSegment.start_at <= moment)
                & (HlsSegment.end_at >= moment)).order_by(HlsSegment.sequence).first()
            return None if row is None else SegmentRecord.of_hls(
                record.id, row, await self._resolution(record))
        row = await RecordingSegment.select().where(
            (RecordingSegment.session_id == record.id) & (RecordingSegment.end_at >= moment)
        ).order_by(RecordingSegment.sequence).first()
        if row is None or (as_utc(row["start_at"]) > moment and row["sequence"] != 1):
            return None  # not written yet
        return segment_record(row)


def holder(rows: list[dict[str, Any]], camera: uuid.UUID, at: datetime
           ) -> dict[str, Any] | None:
    """Of the session rows, the one that holds the camera's moment: a manual recording over
    the continuous one it runs inside, the latest started first."""
    inside = [r for r in rows if r["camera_id"] == camera and r["status"] != DELETED
              and as_utc(r["start_at"]) <= at
              and (r["end_at"] is None or as_utc(r["end_at"]) >= at)]
    inside.sort(key=lambda r: (r["kind"] == "manual", as_utc(r["start_at"])), reverse=True)
    return inside[0] if inside else None
