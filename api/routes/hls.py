"""Guide §3.5: HLS playback of the recording — live window, time-range VOD, segments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from litestar import Request, Response, Router, get
from litestar.params import FromPath, QueryParameter
from litestar.response import File

from api.auth import scoped
from api.params import parse_id
from api.state import services_of
from core.clock import as_utc
from core.errors import InvalidInput, NotFound
from core.recordings import check_segment_name
from core.stream_states import StreamState
from media.playlist import live_playlist, vod_playlist

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
LIVE_WINDOW = 6  # segments (~36 s at 6 s each)
MAX_RANGE = timedelta(hours=24)


@get("/{stream_id:str}/hls/playlist.m3u8", **scoped("streams:read"))
async def playlist(
    request: Request[Any, Any, Any],
    stream_id: FromPath[str],
    start: Annotated[datetime | None, QueryParameter(description="VOD start, ISO 8601")] = None,
    end: Annotated[datetime | None, QueryParameter(description="VOD end, ISO 8601")] = None,
) -> Response[str]:
    """The live playlist (the newest segments), or with `start` and `end` a VOD playlist of
    the recording in that range (24 h at most)."""
    ident = parse_id(stream_id, "stream_id")
    services = services_of(request.app)
    stream = await services.streams.get(ident)
    target = services.settings.media.hls_segment_s
    begin, finish = as_utc(start), as_utc(end)
    if begin is not None or finish is not None:
        if begin is None or finish is None:
            raise InvalidInput("start and end must be given together")
        if finish <= begin:
            raise InvalidInput("end must be after start")
        if finish - begin > MAX_RANGE:
            raise InvalidInput("a VOD range may span at most 24 hours")
        segments = await services.recordings.between(ident, begin, finish)
        if not segments:
            raise NotFound("No recording in that range")
        body = vod_playlist(segments, target)
    else:
        segments = await services.recordings.latest(ident, LIVE_WINDOW)
        body = live_playlist(segments, target)
        if stream.state is StreamState.CLOSED:
            body += "#EXT-X-ENDLIST\n"
    return Response(body, media_type=PLAYLIST_TYPE, headers={"Cache-Control": "no-cache"})


@get("/{stream_id:str}/hls/{segment:str}", **scoped("streams:read"))
async def segment_file(
    request: Request[Any, Any, Any], stream_id: FromPath[str], segment: FromPath[str]
) -> File:
    """One MPEG-TS segment (`video/mp2t`); only names from the index are served."""
    ident = parse_id(stream_id, "stream_id")
    services = services_of(request.app)
    found = await services.recordings.find(ident, check_segment_name(segment))
    path = services.recordings.path(found)
    if not path.is_file():
        raise NotFound(f"Segment {segment} is no longer on disk")
    return File(path=path, media_type="video/mp2t", filename=found.filename,
                content_disposition_type="inline")


router = Router(path="/v2/streams", route_handlers=[playlist, segment_file], tags=["hls"])
