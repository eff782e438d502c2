"""Snapshots and bookmarks: requests recorded as rows, made by jobs, stored as files.

Both live outside the HLS recording (`<data dir>/snapshots`, `<data dir>/bookmarks`), so
they outlive its retention. A row is `processing` until its job marks it `ready` (with the
file's facts) or `failed` (with the reason).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from core.clock import utcnow
from core.errors import InvalidInput, NotFound
from core.recordings import RecordingIndex
from core.tables import Bookmark, Snapshot
from core.text import clean_text

SOURCES = ("live", "historical")
MAX_BEFORE_S = 300.0
MAX_AFTER_S = 300.0
R = TypeVar("R")


class CaptureStatus(StrEnum):
    """A snapshot or bookmark is `processing` until its job makes it `ready` or `failed`."""

    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


PROCESSING = CaptureStatus.PROCESSING.value
READY = CaptureStatus.READY.value
FAILED = CaptureStatus.FAILED.value


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A JPEG of one moment of a stream (or the request for one)."""

    id: uuid.UUID
    stream_id: uuid.UUID
    timestamp: datetime
    source: str
    created_by: str | None
    format: str
    file_size: int | None
    width: int | None
    height: int | None
    metadata: dict[str, Any] | None
    status: CaptureStatus
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BookmarkRecord:
    """An MP4 clip around a moment (or the request for one)."""

    id: uuid.UUID
    stream_id: uuid.UUID
    center_timestamp: datetime
    start_time: datetime
    end_time: datetime
    source: str
    label: str | None
    created_by: str | None
    event_type: str | None
    confidence: float | None
    tags: list[str]
    metadata: dict[str, Any] | None
    status: CaptureStatus
    error: str | None
    video_size: int | None
    attempts: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Page(Generic[R]):
    rows: list[R]
    total: int


class CaptureFiles:
    """Where snapshot and clip files live."""

    def __init__(self, data_dir: Path) -> None:
        self.snapshots = data_dir / "snapshots"
        self.bookmarks = data_dir / "bookmarks"

    def snapshot(self, snapshot_id: uuid.UUID) -> Path:
        return self.snapshots / f"{snapshot_id}.jpg"

    def clip(self, bookmark_id: uuid.UUID) -> Path:
        return self.bookmarks / f"{bookmark_id}.mp4"

    def thumbnail(self, bookmark_id: uuid.UUID) -> Path:
        return self.bookmarks / f"{bookmark_id}.jpg"


def _source(value: str) -> str:
    if value not in SOURCES:
        raise InvalidInput("source must be 'live' or 'historical'")
    return value


def _snapshot(row: dict[str, Any]) -> SnapshotRecord:
    return SnapshotRecord(**{**row, "status": CaptureStatus(row["status"])})


def _bookmark(row: dict[str, Any]) -> BookmarkRecord:
    return BookmarkRecord(**{**row, "status": CaptureStatus(row["status"])})


async def _page(table: Any, condition: Any, order: Any, limit: int,
                offset: int) -> tuple[list[dict[str, Any]], int]:
    query = table.select().order_by(order, ascending=False)
    count = table.count()
    if condition is not None:
        query, count = query.where(condition), count.where(condition)
    rows = await query.offset(offset).limit(limit).output(load_json=True)
    return rows, int(await count)


def _tags(tags: list[str] | None) -> list[str]:
    cleaned = [clean_text(tag, "tags[]", 64, required=True) or "" for tag in tags or []]
    if len(cleaned) > 32:
        raise InvalidInput("at most 32 tags")
    return list(dict.fromkeys(cleaned))


def _confidence(value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InvalidInput("confidence must be between 0 and 1")
    return value


def _and(condition: Any, more: Any) -> Any:
    return more if condition is None else condition & more


class SnapshotService:
    """Snapshot rows; the image itself is made by `jobs` (live on the node, historical on a
    worker)."""

    def __init__(self, files: CaptureFiles, index: RecordingIndex) -> None:
        self.files = files
        self._index = index

    async def create(self, stream_id: uuid.UUID, source: str, timestamp: datetime | None,
                     created_by: str | None, metadata: dict[str, Any] | None) -> SnapshotRecord:
        now = utcnow()
        if _source(source) == "historical":
            if timestamp is None:
                raise InvalidInput("a historical snapshot needs a timestamp")
            if timestamp > now:
                raise InvalidInput("timestamp is in the future")
            if not await self._index.between(stream_id, timestamp, timestamp):
                raise InvalidInput(f"No recording of this stream at {timestamp.isoformat()}")
        elif timestamp is not None:
            raise InvalidInput("a live snapshot takes no timestamp")
        row = Snapshot(
            id=uuid.uuid4(), stream_id=stream_id, timestamp=timestamp or now, source=source,
            created_by=clean_text(created_by, "created_by", 128), metadata=metadata,
            status=PROCESSING, created_at=now, updated_at=now,
        )
        await row.save()
        return await self.get(row.id)

    async def get(self, snapshot_id: uuid.UUID) -> SnapshotRecord:
        row: dict[str, Any] | None = await Snapshot.select().where(
            Snapshot.id == snapshot_id).first().output(load_json=True)
        if row is None:
            raise NotFound(f"Snapshot {snapshot_id} not found")
        return _snapshot(row)

    async def page(self, *, stream_id: uuid.UUID | None, created_by: str | None,
                   source: str | None, after: datetime | None, before: datetime | None,
                   limit: int, offset: int) -> Page[SnapshotRecord]:
        condition: Any = None
        if stream_id is not None:
            condition = _and(condition, Snapshot.stream_id == stream_id)
        if created_by is not None:
            condition = _and(condition, Snapshot.created_by == created_by)
        if source is not None:
            condition = _and(condition, Snapshot.source == _source(source))
        if after is not None:
            condition = _and(condition, Snapshot.timestamp > after)
        if before is not None:
            condition = _and(condition, Snapshot.timestamp < before)
        rows, total = await _page(Snapshot, condition, Snapshot.created_at, limit, offset)
        return Page([_snapshot(r) for r in rows], total)

    async def delete(self, snapshot_id: uuid.UUID) -> None:
        await self.get(snapshot_id)
        self.files.snapshot(snapshot_id).unlink(missing_ok=True)
        await Snapshot.delete().where(Snapshot.id == snapshot_id)

    async def ready(self, snapshot_id: uuid.UUID, size: int, width: int, height: int,
                    timestamp: datetime | None = None) -> None:
        values: dict[Any, Any] = {Snapshot.status: READY, Snapshot.file_size: size,
                                  Snapshot.width: width, Snapshot.height: height,
                                  Snapshot.error: None, Snapshot.updated_at: utcnow()}
        if timestamp is not None:
            values[Snapshot.timestamp] = timestamp
        await Snapshot.update(values).where(Snapshot.id == snapshot_id)

    async def touch(self, snapshot_id: uuid.UUID) -> None:
        """Show that the snapshot's job is alive, so housekeeping does not take it for lost."""
        await Snapshot.update({Snapshot.updated_at: utcnow()}).where(Snapshot.id == snapshot_id)

    async def failed(self, snapshot_id: uuid.UUID, reason: str) -> None:
        await Snapshot.update({Snapshot.status: FAILED, Snapshot.error: reason[:1000],
                               Snapshot.updated_at: utcnow()}).where(Snapshot.id == snapshot_id)


class BookmarkService:
    """Bookmark rows; the clip and thumbnail are made by a worker job from the recording."""

    def __init__(self, files: CaptureFiles, index: RecordingIndex) -> None:
        self.files = files
        self._index = index

    async def create(self, stream_id: uuid.UUID, fields: dict[str, Any]) -> BookmarkRecord:
        now = utcnow()
        source = _source(fields.get("source") or "live")
        before, after = float(fields["before_seconds"]), float(fields["after_seconds"])
        if not 0 <= before <= MAX_BEFORE_S or not 0 <= after <= MAX_AFTER_S:
            raise InvalidInput(f"before_seconds and after_seconds must be between 0 and "
                               f"{MAX_BEFORE_S:g} (got {before:g} and {after:g})")
        if before + after < 1:
            raise InvalidInput("a clip must last at least 1 second")
        center: datetime | None = fields.get("center_timestamp")
        if source == "live":
            if center is not None:
                raise InvalidInput("a live bookmark takes no center_timestamp")
            center = now
        else:
            if center is None:
                raise InvalidInput("a historical bookmark needs center_timestamp")
            if center + timedelta(seconds=after) > now:
                raise InvalidInput("the clip would end in the future; use source 'live'")
            start, end = center - timedelta(seconds=before), center + timedelta(seconds=after)
            if not await self._index.between(stream_id, start, end):
                raise InvalidInput(f"No recording of this stream between {start.isoformat()} "
                                   f"and {end.isoformat()}")
        row = Bookmark(
            id=uuid.uuid4(), stream_id=stream_id, center_timestamp=center,
            start_time=center - timedelta(seconds=before),
            end_time=center + timedelta(seconds=after), source=source,
            label=clean_text(fields.get("label"), "label", 500),
            created_by=clean_text(fields.get("created_by"), "created_by", 128),
            event_type=clean_text(fields.get("event_type"), "event_type", 64),
            confidence=_confidence(fields.get("confidence")),
            tags=_tags(fields.get("tags")), metadata=fields.get("metadata"), status=PROCESSING,
            created_at=now, updated_at=now,
        )
        await row.save()
        return await self.get(row.id)

    async def get(self, bookmark_id: uuid.UUID) -> BookmarkRecord:
        row: dict[str, Any] | None = await Bookmark.select().where(
            Bookmark.id == bookmark_id).first().output(load_json=True)
        if row is None:
            raise NotFound(f"Bookmark {bookmark_id} not found")
        return _bookmark(row)

    async def page(self, *, stream_id: uuid.UUID | None, event_type: str | None,
                   created_by: str | None, source: str | None, start_after: datetime | None,
                   start_before: datetime | None, limit: int,
                   offset: int) -> Page[BookmarkRecord]:
        condition: Any = None
        if stream_id is not None:
            condition = _and(condition, Bookmark.stream_id == stream_id)
        if event_type is not None:
            condition = _and(condition, Bookmark.event_type == event_type)
        if created_by is not None:
            condition = _and(condition, Bookmark.created_by == created_by)
        if source is not None:
            condition = _and(condition, Bookmark.source == _source(source))
        if start_after is not None:
            condition = _and(condition, Bookmark.start_time > start_after)
        if start_before is not None:
            condition = _and(condition, Bookmark.start_time < start_before)
        rows, total = await _page(Bookmark, condition, Bookmark.created_at, limit, offset)
        return Page([_bookmark(r) for r in rows], total)

    async def touch(self, bookmark_id: uuid.UUID) -> None:
        """Show that the bookmark's job is alive, so housekeeping does not take it for lost."""
        await Bookmark.update({Bookmark.updated_at: utcnow()}).where(Bookmark.id == bookmark_id)

    async def update(self, bookmark_id: uuid.UUID, changes: dict[str, Any]) -> BookmarkRecord:
        await self.get(bookmark_id)
        values: dict[Any, Any] = {}
        if "label" in changes:
            values[Bookmark.label] = clean_text(changes["label"], "label", 500)
        if "event_type" in changes:
            values[Bookmark.event_type] = clean_text(changes["event_type"], "event_type", 64)
        if "tags" in changes:
            values[Bookmark.tags] = _tags(changes["tags"])
        if "metadata" in changes:
            values[Bookmark.metadata] = changes["metadata"]
        if values:
            values[Bookmark.updated_at] = utcnow()
            await Bookmark.update(values).where(Bookmark.id == bookmark_id)
        return await self.get(bookmark_id)

    async def delete(self, bookmark_id: uuid.UUID) -> None:
        await self.get(bookmark_id)
        self.files.clip(bookmark_id).unlink(missing_ok=True)
        self.files.thumbnail(bookmark_id).unlink(missing_ok=True)
        await Bookmark.delete().where(Bookmark.id == bookmark_id)

    async def ready(self, bookmark_id: uuid.UUID, size: int) -> None:
        await Bookmark.update({Bookmark.status: READY, Bookmark.video_size: size,
                               Bookmark.error: None, Bookmark.updated_at: utcnow()}).where(
            Bookmark.id == bookmark_id)

    async def failed(self, bookmark_id: uuid.UUID, reason: str) -> None:
        await Bookmark.update({Bookmark.status: FAILED, Bookmark.error: reason[:1000],
                               Bookmark.updated_at: utcnow()}).where(Bookmark.id == bookmark_id)


async def stale_jobs(stale_s: float, max_attempts: int = 3) -> dict[str, list[uuid.UUID]]:
    """Rows still `processing` whose job has not shown life for `stale_s`: to run again, or
    (after `max_attempts`) to fail. Returns {"snapshot": [...], "bookmark": [...]} to re-run."""
    cutoff = utcnow() - timedelta(seconds=stale_s)
    rerun: dict[str, list[uuid.UUID]] = {"snapshot": [], "bookmark": []}
    for kind, table in (("snapshot", Snapshot), ("bookmark", Bookmark)):
        rows = await table.select(table.id, table.attempts).where(
            (table.status == PROCESSING) & (table.updated_at < cutoff))
        for row in rows:
            if row["attempts"] >= max_attempts:
                await table.update({table.status: FAILED, table.updated_at: utcnow(),
                                    table.error: "the job was lost (worker restarts)"}).where(
                    table.id == row["id"])
                continue
            await table.update({table.attempts: row["attempts"] + 1,
                                table.updated_at: utcnow()}).where(table.id == row["id"])
            rerun[kind].append(row["id"])
    return rerun


async def jobs_in_progress(ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """The snapshots and bookmarks of `ids` still being made (per-client job bounds)."""
    found: set[uuid.UUID] = set()
    for table in (Snapshot, Bookmark):
        rows = await table.select(table.id).where(table.id.is_in(ids)
                                                  & (table.status == PROCESSING))
        found.update(r["id"] for r in rows)
    return found
