"""OmniSight media: recording segments and their thumbnails, event thumbnails, the live
snapshot and the live HLS playlist of a camera (docs/omnisight.md, "Media").

Ids from the path are parsed as UUIDs and files are found from rows: no request text
reaches the file system.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath

from api.files import serve_file
from api.omnisight.guards import omni_scoped
from api.omnisight.responses import error_responses
from api.state import Services, caller, services_of
from core.captures import CaptureStatus
from core.errors import Conflict, MediaUnavailable, NotFound
from core.recording_sessions import parse_id
from core.recordings import check_segment_name
from core.stream_states import StreamState
from core.streams import StreamRecord
from media.playlist import live_playlist

SEGMENT_TYPES = {"mp4": "video/mp4", "ts": "video/mp2t"}
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
LIVE_WINDOW = 6  # segments
SNAPSHOT_DEADLINE_S = 1.8  # the document promises an answer within 2 s

ERRORS = error_responses(409, 416, 503)
SNAPSHOT_ERRORS = error_responses(409, 416, 429, 503)


@get("/media/segments/{segment_id:str}", **omni_scoped("recordings:read"), responses=ERRORS)
async def segment_video(request: Request[Any, Any, Any],
                        segment_id: FromPath[str]) -> Response[Any]:
    """A recording segment's file (MP4 or MPEG-TS), with single HTTP Range requests."""
    sessions = services_of(request.app).recording_sessions
    segment, path = await sessions.segment_file(parse_id(segment_id, "Segment"))
    return serve_file(request, path, SEGMENT_TYPES.get(segment.format, "video/mp4"),
                      segment.filename)


@get("/media/thumbnails/segments/{segment_id:str}", **omni_scoped("recordings:read"),
      responses=ERRORS)
async def segment_thumbnail(request: Request[Any, Any, Any],
                            segment_id: FromPath[str]) -> Response[Any]:
    """A segment's JPEG thumbnail (its first frame)."""
    sessions = services_of(request.app).recording_sessions
    _, path = await sessions.segment_file(parse_id(segment_id, "Segment"), thumbnail=True)
    return serve_file(request, path, "image/jpeg", path.name)


async def _live_stream(services: Services, camera_id: str) -> StreamRecord:
    camera = parse_id(camera_id, "Camera")
    await services.devices.get(camera)
    stream = await services.streams.active_for_camera(camera)
    if stream is None or stream.state is not StreamState.LIVE:
        raise Conflict("The camera is not streaming: start its stream first",
                       details={"cameraId": str(camera),
                                "state": None if stream is None else stream.state.value})
    return stream


@get("/cameras/{camera_id:str}/snapshot", **omni_scoped("cameras:read"),
     responses=SNAPSHOT_ERRORS)
async def camera_snapshot(request: Request[Any, Any, Any],
                          camera_id: FromPath[str]) -> Response[Any]:
    """A JPEG of the camera's newest frame (from the GOP cache on its media node); 409 when
    the camera is not streaming. The snapshot is also kept as a VAS snapshot (source live,
    created_by `omnisight`)."""
    started = time.monotonic()
    services = services_of(request.app)
    stream = await _live_stream(services, camera_id)
    owner = await services.control.owner(stream)
    await services.job_quota.check(caller(request))
    row = await services.snapshots.create(stream.id, "live", None, "omnisight", None)
    await services.job_quota.admit_or_undo(caller(request), row.id,
                                           lambda: services.snapshots.delete(row.id))
    await services.jobs.live_snapshot(owner, row.id)
    while True:
        row = await services.snapshots.get(row.id)
        if row.status is CaptureStatus.READY:
            return serve_file(request, services.snapshots.files.snapshot(row.id), "image/jpeg",
                              f"{row.id}.jpg")
        if row.status is CaptureStatus.FAILED:
            raise MediaUnavailable("The snapshot failed", row.error)
        if time.monotonic() - started > SNAPSHOT_DEADLINE_S:
            raise MediaUnavailable("The snapshot was not ready in time",
                                   f"snapshot {row.id} still processing")
        await asyncio.sleep(0.05)


@get("/cameras/{camera_id:str}/live/hls/index.m3u8", **omni_scoped("cameras:read"),
      responses=ERRORS)
async def live_hls(request: Request[Any, Any, Any], camera_id: FromPath[str]) -> Response[str]:
    """The live HLS playlist (the newest recorded segments); segment URIs are relative, so
    they resolve beside this URL and take the same Authorization header."""
    services = services_of(request.app)
    stream = await _live_stream(services, camera_id)
    segments = await services.recordings.latest(stream.id, LIVE_WINDOW)
    body = live_playlist(segments, services.settings.media.hls_segment_s)
    return Response(body, media_type=PLAYLIST_TYPE, headers={"Cache-Control": "no-cache"})


@get("/cameras/{camera_id:str}/live/hls/{segment:str}", **omni_scoped("cameras:read"),
      responses=ERRORS)
async def live_hls_segment(request: Request[Any, Any, Any], camera_id: FromPath[str],
                           segment: FromPath[str]) -> Response[Any]:
    """One MPEG-TS segment of the live playlist (only names the recorder indexed)."""
    services = services_of(request.app)
    camera = parse_id(camera_id, "Camera")
    stream = await services.streams.active_for_camera(camera)
    if stream is None:
        raise NotFound(f"Segment {segment[:64]} not found")
    found = await services.recordings.find(stream.id, check_segment_name(segment))
    return serve_file(request, services.recordings.path(found), "video/mp2t", found.filename)


router = Router(path="/", route_handlers=[
    segment_video, segment_thumbnail, camera_snapshot, live_hls,
    live_hls_segment,
], tags=["OmniSight: media"])
