"""The HLS segment index: wall-clock ranges to files, and retention."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from piccolo.query.functions.aggregate import Count, Min, Sum

from core.errors import InvalidInput, NotFound
from core.tables import HlsSegment

SEGMENT_NAME = re.compile(r"^seg_(\d{1,15})\.ts$")


@dataclass(frozen=True, slots=True)
class RecordingUsage:
    """What the recordings hold: bytes, segments, the start of the oldest one."""

    size: int
    segments: int
    streams: int
    oldest: datetime | None


@dataclass(frozen=True, slots=True)
class Segment:
    """An indexed segment (satisfies `media.playlist.PlaylistSegment`)."""

    stream_id: uuid.UUID
    sequence: int
    filename: str
    start: datetime
    end: datetime
    duration: float
    size: int
    discontinuity: bool


def _segment(row: dict[str, Any]) -> Segment:
    return Segment(row["stream_id"], int(row["sequence"]), row["filename"], row["start_at"],
                   row["end_at"], float(row["duration"]), int(row["size"]),
                   bool(row["discontinuity"]))


def check_segment_name(name: str) -> str:
    """Only names the recorder writes are accepted: no paths, no traversal."""
    if not SEGMENT_NAME.match(name):
        raise InvalidInput("segment name must look like seg_<number>.ts")
    return name


class RecordingIndex:
    """Reads and writes of `vas_hls_segment`; files live under `root/<stream id>/`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def directory(self, stream_id: uuid.UUID) -> Path:
        return self.root / str(stream_id)

    def path(self, segment: Segment) -> Path:
        return self.directory(segment.stream_id) / segment.filename

    async def add(self, stream_id: uuid.UUID, sequence: int, filename: str, start: datetime,
                  end: datetime, duration: float, size: int, discontinuity: bool) -> None:
        await HlsSegment(
            stream_id=stream_id, sequence=sequence, filename=filename, start_at=start,
            end_at=end, duration=duration, size=size, discontinuity=discontinuity,
        ).save()

    async def add_once(self, stream_id: uuid.UUID, sequence: int, filename: str,
                       start: datetime, end: datetime, duration: float, size: int,
                       discontinuity: bool) -> None:
        """`add`, unless the segment is indexed already (a retry after a lost answer)."""
        if await HlsSegment.exists().where(
            (HlsSegment.stream_id == stream_id) & (HlsSegment.sequence == sequence)
        ):
            return
        await self.add(stream_id, sequence, filename, start, end, duration, size, discontinuity)

    async def next_sequence(self, stream_id: uuid.UUID) -> int:
        row = await HlsSegment.select(HlsSegment.sequence).where(
            HlsSegment.stream_id == stream_id
        ).order_by(HlsSegment.sequence, ascending=False).first()
        return 0 if row is None else int(row["sequence"]) + 1

    async def latest(self, stream_id: uuid.UUID, count: int) -> list[Segment]:
        rows = await HlsSegment.select().where(HlsSegment.stream_id == stream_id).order_by(
            HlsSegment.sequence, ascending=False
        ).limit(count)
        return [_segment(r) for r in reversed(rows)]

    async def between(self, stream_id: uuid.UUID, start: datetime, end: datetime) -> list[Segment]:
        """Segments overlapping [start, end], in order."""
        rows = await HlsSegment.select().where(
            (HlsSegment.stream_id == stream_id)
            & (HlsSegment.end_at > start)
            & (HlsSegment.start_at < end)
        ).order_by(HlsSegment.sequence)
        return [_segment(r) for r in rows]

    async def find(self, stream_id: uuid.UUID, filename: str) -> Segment:
        row = await HlsSegment.select().where(
            (HlsSegment.stream_id == stream_id) & (HlsSegment.filename == filename)
        ).first()
        if row is None:
            raise NotFound(f"Segment {filename} not found")
        return _segment(row)

    async def total_bytes(self) -> int:
        """Bytes of every recorded segment still indexed."""
        row = await HlsSegment.select(Sum(HlsSegment.size, alias="total")).first()
        return int((row or {}).get("total") or 0)

    async def purge_before(self, cutoff: datetime, batch: int = 500) -> int:
        """Delete segments that ended before `cutoff`: file first, then row. Returns count."""
        removed = 0
        while True:
            rows = await HlsSegment.select().where(HlsSegment.end_at < cutoff).order_by(
                HlsSegment.end_at
            ).limit(batch)
            if not rows:
                return removed
            for row in rows:
                self.path(_segment(row)).unlink(missing_ok=True)
            ids = [row["id"] for row in rows]
            await HlsSegment.delete().where(HlsSegment._meta.primary_key.is_in(ids))
            removed += len(ids)

    async def usage(self) -> RecordingUsage:
        """Bytes and segments indexed, how many streams recorded, the oldest start."""
        row = await HlsSegment.select(
            Sum(HlsSegment.size, alias="size"), Count(alias="segments"),
            Count(distinct=[HlsSegment.stream_id], alias="streams"),
            Min(HlsSegment.start_at, alias="oldest"),
        ).first()
        assert row is not None
        oldest = row["oldest"]
        if isinstance(oldest, str):  # SQLite's MIN answers the stored text
            oldest = datetime.fromisoformat(oldest)
        return RecordingUsage(int(row["size"] or 0), int(row["segments"] or 0),
                              int(row["streams"] or 0), oldest)

    async def purge_oldest(self, size: int, batch: int = 100) -> tuple[int, int]:
        """Delete the oldest segments (by start) until `size` bytes are freed or none are
        left: file first, then row. Returns (segments removed, bytes freed)."""
        removed = freed = 0
        while freed < size:
            rows = await HlsSegment.select().order_by(HlsSegment.start_at).limit(batch)
            if not rows:
                break
            chosen = []
            for row in rows:
                if freed >= size:
                    break
                self.path(_segment(row)).unlink(missing_ok=True)
                chosen.append(row["id"])
                freed += int(row["size"])
            await HlsSegment.delete().where(HlsSegment._meta.primary_key.is_in(chosen))
            removed += len(chosen)
        return removed, freed

    async def purge_stream(self, stream_id: uuid.UUID) -> int:
        """Delete every segment of one stream (its continuous recording): files, then rows."""
        rows = await HlsSegment.select().where(HlsSegment.stream_id == stream_id)
        for row in rows:
            self.path(_segment(row)).unlink(missing_ok=True)
        await HlsSegment.delete().where(HlsSegment.stream_id == stream_id)
        return len(rows)

    async def purge_ids(self, ids: list[Any]) -> int:
        """Delete the segments with these row ids: files, then rows."""
        rows = await HlsSegment.select().where(HlsSegment._meta.primary_key.is_in(ids))
        for row in rows:
            self.path(_segment(row)).unlink(missing_ok=True)
        if rows:
            await HlsSegment.delete().where(HlsSegment._meta.primary_key.is_in(ids))
        return len(rows)
