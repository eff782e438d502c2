"""Progress of the segment export of manual recordings: what is exported, what is due.

The export is idempotent by construction: where a session's export goes on is read from its
rows (the end of its last segment), so a job that runs twice or again after a crash picks up
where the last written row ends. `exported_until` marks a finished session's export as done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.clock import utcnow
from core.recording_segments import SegmentRecord, segment_record
from core.tables import HlsSegment, RecordingSegment, RecordingSession


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """Where a session's export stands."""

    last_end: datetime | None  # end of the newest exported segment
    next_sequence: int


class RecordingExports:
    """Reads and writes of the export of manual recordings (worker side)."""

    async def progress(self, session_id: uuid.UUID) -> ExportProgress:
        row = await RecordingSegment.select(RecordingSegment.sequence, RecordingSegment.end_at
                                            ).where(RecordingSegment.session_id == session_id
                                                    ).order_by(RecordingSegment.sequence,
                                                               ascending=False).first()
        if row is None:
            return ExportProgress(None, 1)
        return ExportProgress(row["end_at"], int(row["sequence"]) + 1)

    async def add(self, session_id: uuid.UUID, sequence: int, filename: str, thumbnail: str,
                  start: datetime, end: datetime, duration: float, size: int, fmt: str,
                  resolution: str | None) -> SegmentRecord:
        """Record one written segment (a row that exists already is kept: same file)."""
        existing = await RecordingSegment.select().where(
            (RecordingSegment.session_id == session_id)
            & (RecordingSegment.sequence == sequence)).first()
        if existing is not None:
            return segment_record(existing)
        row = RecordingSegment(
            id=uuid.uuid4(), session_id=session_id, sequence=sequence, filename=filename,
            thumbnail=thumbnail, start_at=start, end_at=end, duration=duration, size=size,
            format=fmt, resolution=resolution, created_at=utcnow())
        await RecordingSegment.insert(row)
        found = await RecordingSegment.select().where(RecordingSegment.id == row.id).first()
        assert found is not None
        return segment_record(found)

    async def done(self, session_id: uuid.UUID, until: datetime) -> None:
        """The export of an ended session is complete."""
        await RecordingSession.update({RecordingSession.exported_until: until,
                                       RecordingSession.updated_at: utcnow()}).where(
            RecordingSession.id == session_id)

    async def attempt(self, session_id: uuid.UUID) -> int:
        """Count one more export attempt of an ended session; returns the count."""
        await RecordingSession.update({
            RecordingSession.export_attempts: RecordingSession.export_attempts + 1,
        }).where(RecordingSession.id == session_id)
        row = await RecordingSession.select(RecordingSession.export_attempts).where(
            RecordingSession.id == session_id).first()
        return 0 if row is None else int(row["export_attempts"])

    async def due(self, max_attempts: int = 5) -> list[uuid.UUID]:
        """Manual sessions with export work: recording ones with a segment's worth recorded
        since their last exported segment, and ended ones whose export is not done (a lost
        or failed job runs again, up to `max_attempts`)."""
        rows = await RecordingSession.select().where(
            (RecordingSession.kind == "manual") & RecordingSession.exported_until.is_null()
            & RecordingSession.status.is_in(["recording", "completed", "failed"])
            & (RecordingSession.export_attempts < max_attempts))
        due: list[uuid.UUID] = []
        for row in rows:
            if row["status"] != "recording":
                due.append(row["id"])
                continue
            progress = await self.progress(row["id"])
            since = progress.last_end or row["start_at"]
            newest = await HlsSegment.select(HlsSegment.end_at).where(
                HlsSegment.stream_id == row["stream_id"]).order_by(
                HlsSegment.end_at, ascending=False).first()
            wanted = since + timedelta(seconds=int(row["segment_duration"]))
            if newest is not None and newest["end_at"] > wanted:
                due.append(row["id"])
        return due
