"""Response bodies of snapshots and bookmarks (guide §3.6, §3.7), built from their records."""

from __future__ import annotations

from typing import Any, TypedDict

from api.views import PaginationView
from core.captures import BookmarkRecord, CaptureStatus, SnapshotRecord
from core.clock import iso


class SnapshotView(TypedDict):
    id: str
    stream_id: str
    timestamp: str | None
    source: str
    created_by: str | None
    format: str
    file_size: int | None
    width: int | None
    height: int | None
    image_url: str
    metadata: dict[str, Any] | None
    status: str
    error: str | None
    created_at: str | None


class SnapshotListView(TypedDict):
    snapshots: list[SnapshotView]
    pagination: PaginationView


class BookmarkView(TypedDict):
    id: str
    stream_id: str
    center_timestamp: str | None
    start_time: str | None
    end_time: str | None
    duration_seconds: float
    source: str
    label: str | None
    created_by: str | None
    event_type: str | None
    confidence: float | None
    tags: list[str]
    video_url: str | None
    thumbnail_url: str | None
    status: str
    error: str | None
    metadata: dict[str, Any] | None
    created_at: str | None
    updated_at: str | None


class BookmarkListView(TypedDict):
    bookmarks: list[BookmarkView]
    pagination: PaginationView


def snapshot_view(row: SnapshotRecord) -> SnapshotView:
    return {
        "id": str(row.id), "stream_id": str(row.stream_id),
        "timestamp": iso(row.timestamp), "source": row.source,
        "created_by": row.created_by, "format": row.format,
        "file_size": row.file_size, "width": row.width, "height": row.height,
        "image_url": f"/v2/snapshots/{row.id}/image", "metadata": row.metadata,
        "status": row.status.value, "error": row.error, "created_at": iso(row.created_at),
    }


def snapshot_list_view(rows: list[SnapshotRecord], total: int, limit: int,
                       offset: int) -> SnapshotListView:
    return {"snapshots": [snapshot_view(r) for r in rows],
            "pagination": {"total": total, "limit": limit, "offset": offset}}


def bookmark_view(row: BookmarkRecord) -> BookmarkView:
    ready = row.status is CaptureStatus.READY
    return {
        "id": str(row.id), "stream_id": str(row.stream_id),
        "center_timestamp": iso(row.center_timestamp),
        "start_time": iso(row.start_time), "end_time": iso(row.end_time),
        "duration_seconds": round((row.end_time - row.start_time).total_seconds(), 3),
        "source": row.source, "label": row.label, "created_by": row.created_by,
        "event_type": row.event_type, "confidence": row.confidence, "tags": row.tags,
        "video_url": f"/v2/bookmarks/{row.id}/video" if ready else None,
        "thumbnail_url": f"/v2/bookmarks/{row.id}/thumbnail" if ready else None,
        "status": row.status.value, "error": row.error, "metadata": row.metadata,
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
    }


def bookmark_list_view(rows: list[BookmarkRecord], total: int, limit: int,
                       offset: int) -> BookmarkListView:
    return {"bookmarks": [bookmark_view(r) for r in rows],
            "pagination": {"total": total, "limit": limit, "offset": offset}}
