"""Guide §3.6 and §3.7: snapshots and bookmarks — requests recorded, made by jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import scoped
from api.capture_views import (
    BookmarkListView,
    BookmarkView,
    SnapshotListView,
    SnapshotView,
    bookmark_list_view,
    bookmark_view,
    snapshot_list_view,
    snapshot_view,
)
from api.files import serve_file
from api.params import parse_id
from api.schemas import BookmarkBody, BookmarkUpdateBody, SnapshotBody
from api.state import Services, caller, services_of
from core.captures import BookmarkRecord, CaptureStatus, SnapshotRecord
from core.clock import as_utc
from core.errors import Conflict, InvalidInput, MediaUnavailable
from core.stream_states import StreamState
from core.streams import StreamRecord

Limit = Annotated[int, QueryParameter(ge=1, le=100)]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000)]


def _require_ready(kind: str, row: SnapshotRecord | BookmarkRecord) -> None:
    """409 while the job is still working or when it failed (with its reason)."""
    if row.status is not CaptureStatus.READY:
        reason = f": {row.error}" if row.error else ""
        raise Conflict(f"{kind} is {row.status.value}{reason}")


async def _stream(services: Services, stream_id: str) -> StreamRecord:
    return await services.streams.get(parse_id(stream_id, "stream_id"))


@post("/streams/{stream_id:str}/snapshots", status_code=201, **scoped("snapshots:write"))
async def create_snapshot(
    request: Request[Any, Any, Any], stream_id: FromPath[str], data: JSONBody[SnapshotBody]
) -> SnapshotView:
    """Capture a frame: `live` (the newest frame, on the stream's media node) or
    `historical` (the recorded frame nearest `timestamp`). The image is made by a job;
    `file_size`, `width` and `height` are filled when `status` is `ready`."""
    services = services_of(request.app)
    stream = await _stream(services, stream_id)
    owner = None
    if data.source == "live":
        if stream.state is not StreamState.LIVE:
            raise Conflict(f"Stream is {stream.state}; a live snapshot needs it LIVE")
        owner = next((n for n in await services.nodes.alive() if n.node_id == stream.node_id),
                     None)
        if owner is None:
            raise MediaUnavailable("The stream's media node is not available")
    await services.job_quota.check(caller(request))
    row = await services.snapshots.create(stream.id, data.source, as_utc(data.timestamp),
                                          data.created_by, data.metadata)
    await services.job_quota.admit_or_undo(caller(request), row.id,
                                           lambda: services.snapshots.delete(row.id))
    try:
        if owner is not None:
            await services.jobs.live_snapshot(owner, row.id)
        else:
            await services.jobs.historical_snapshot(row.id)
    except MediaUnavailable:
        # No job was queued (Redis is away): the request did not happen, leave no row
        # that would never complete. The caller sees 503 and may retry.
        await services.snapshots.delete(row.id)
        raise
    return snapshot_view(row)


@get("/snapshots", **scoped("snapshots:read"))
async def list_snapshots(
    request: Request[Any, Any, Any], stream_id: FromQuery[str | None] = None,
    created_by: FromQuery[str | None] = None, source: FromQuery[str | None] = None,
    after: FromQuery[datetime | None] = None, before: FromQuery[datetime | None] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> SnapshotListView:
    """Snapshots, newest first, filtered by stream, creator, source and time."""
    page = await services_of(request.app).snapshots.page(
        stream_id=parse_id(stream_id, "stream_id") if stream_id else None,
        created_by=created_by, source=source, after=as_utc(after), before=as_utc(before),
        limit=limit, offset=offset)
    return snapshot_list_view(page.rows, page.total, limit, offset)


@get("/snapshots/{snapshot_id:str}", **scoped("snapshots:read"))
async def get_snapshot(
    request: Request[Any, Any, Any], snapshot_id: FromPath[str]
) -> SnapshotView:
    """One snapshot."""
    row = await services_of(request.app).snapshots.get(parse_id(snapshot_id, "snapshot_id"))
    return snapshot_view(row)


@get("/snapshots/{snapshot_id:str}/image", **scoped("snapshots:read"))
async def snapshot_image(
    request: Request[Any, Any, Any], snapshot_id: FromPath[str]
) -> Response[Any]:
    """The JPEG (409 while the snapshot is still being made or failed)."""
    services = services_of(request.app)
    row = await services.snapshots.get(parse_id(snapshot_id, "snapshot_id"))
    _require_ready("Snapshot", row)
    return serve_file(request, services.snapshots.files.snapshot(row.id), "image/jpeg",
                      f"{row.id}.jpg")


@delete("/snapshots/{snapshot_id:str}", status_code=204, **scoped("snapshots:write"))
async def delete_snapshot(request: Request[Any, Any, Any], snapshot_id: FromPath[str]) -> None:
    """Delete a snapshot and its image."""
    await services_of(request.app).snapshots.delete(parse_id(snapshot_id, "snapshot_id"))


@post("/streams/{stream_id:str}/bookmarks", status_code=201, **scoped("bookmarks:write"))
async def create_bookmark(
    request: Request[Any, Any, Any], stream_id: FromPath[str], data: JSONBody[BookmarkBody]
) -> BookmarkView:
    """Bookmark [center - before, center + after] as an MP4 clip with a thumbnail: `live`
    (center = now; the clip is cut once `after_seconds` are recorded) or `historical`
    (`center_timestamp`). before_seconds and after_seconds are each 0 to 300."""
    services = services_of(request.app)
    stream = await _stream(services, stream_id)
    if data.source == "live" and stream.state is not StreamState.LIVE:
        raise Conflict(f"Stream is {stream.state}; a live bookmark needs it LIVE")
    fields = msgspec.structs.asdict(data)
    fields["center_timestamp"] = as_utc(data.center_timestamp)
    await services.job_quota.check(caller(request))
    row = await services.bookmarks.create(stream.id, fields)
    await services.job_quota.admit_or_undo(caller(request), row.id,
                                           lambda: services.bookmarks.delete(row.id))
    try:
        await services.jobs.export_bookmark(row.id)
    except MediaUnavailable:
        await services.bookmarks.delete(row.id)  # as for snapshots: no job, no row
        raise
    return bookmark_view(row)


@get("/bookmarks", **scoped("bookmarks:read"))
async def list_bookmarks(
    request: Request[Any, Any, Any], stream_id: FromQuery[str | None] = None,
    event_type: FromQuery[str | None] = None, created_by: FromQuery[str | None] = None,
    source: FromQuery[str | None] = None, start_after: FromQuery[datetime | None] = None,
    start_before: FromQuery[datetime | None] = None, limit: Limit = 50, offset: Offset = 0,
) -> BookmarkListView:
    """Bookmarks, newest first, filtered by stream, event type, creator, source and start."""
    page = await services_of(request.app).bookmarks.page(
        stream_id=parse_id(stream_id, "stream_id") if stream_id else None,
        event_type=event_type, created_by=created_by, source=source,
        start_after=as_utc(start_after), start_before=as_utc(start_before), limit=limit,
        offset=offset)
    return bookmark_list_view(page.rows, page.total, limit, offset)


@get("/bookmarks/{bookmark_id:str}", **scoped("bookmarks:read"))
async def get_bookmark(
    request: Request[Any, Any, Any], bookmark_id: FromPath[str]
) -> BookmarkView:
    """One bookmark."""
    row = await services_of(request.app).bookmarks.get(parse_id(bookmark_id, "bookmark_id"))
    return bookmark_view(row)


async def _ready_bookmark(services: Services, bookmark_id: str) -> BookmarkRecord:
    row = await services.bookmarks.get(parse_id(bookmark_id, "bookmark_id"))
    _require_ready("Bookmark", row)
    return row


@get("/bookmarks/{bookmark_id:str}/video", **scoped("bookmarks:read"))
async def bookmark_video(
    request: Request[Any, Any, Any], bookmark_id: FromPath[str]
) -> Response[Any]:
    """The MP4 clip (faststart), with HTTP Range support."""
    services = services_of(request.app)
    row = await _ready_bookmark(services, bookmark_id)
    return serve_file(request, services.bookmarks.files.clip(row.id), "video/mp4",
                      f"{row.id}.mp4")


@get("/bookmarks/{bookmark_id:str}/thumbnail", **scoped("bookmarks:read"))
async def bookmark_thumbnail(
    request: Request[Any, Any, Any], bookmark_id: FromPath[str]
) -> Response[Any]:
    """The JPEG thumbnail at the bookmark's center."""
    services = services_of(request.app)
    row = await _ready_bookmark(services, bookmark_id)
    return serve_file(request, services.bookmarks.files.thumbnail(row.id), "image/jpeg",
                      f"{row.id}.jpg")


@put("/bookmarks/{bookmark_id:str}", **scoped("bookmarks:write"))
async def update_bookmark(
    request: Request[Any, Any, Any], bookmark_id: FromPath[str],
    data: JSONBody[BookmarkUpdateBody],
) -> BookmarkView:
    """Change `label`, `event_type`, `tags` or `metadata`; other fields are kept."""
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    if not changes:
        raise InvalidInput("give at least one of label, event_type, tags, metadata")
    row = await services_of(request.app).bookmarks.update(
        parse_id(bookmark_id, "bookmark_id"), changes)
    return bookmark_view(row)


@delete("/bookmarks/{bookmark_id:str}", status_code=204, **scoped("bookmarks:write"))
async def delete_bookmark(request: Request[Any, Any, Any], bookmark_id: FromPath[str]) -> None:
    """Delete a bookmark, its clip and its thumbnail."""
    await services_of(request.app).bookmarks.delete(parse_id(bookmark_id, "bookmark_id"))


router = Router(path="/v2", route_handlers=[
    create_snapshot, list_snapshots, get_snapshot, snapshot_image, delete_snapshot,
    create_bookmark, list_bookmarks, get_bookmark, bookmark_video, bookmark_thumbnail,
    update_bookmark, delete_bookmark,
], tags=["snapshots and bookmarks"])
