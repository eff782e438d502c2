"""Guide §3.3: the V2 stream registry."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import scoped
from api.params import parse_id, parse_state
from api.schemas import CreateStreamBody
from api.state import services_of
from api.views import (
    HealthView,
    StreamDetailView,
    StreamListView,
    health_view,
    stream_detail,
    stream_list_view,
)


@get("/", **scoped("streams:read"))
async def list_streams(
    request: Request[Any, Any, Any],
    state_name: Annotated[str | None, QueryParameter(
        name="state", description="LIVE, READY, ERROR, STOPPED, INITIALIZING or CLOSED"
    )] = None,
    camera_id: FromQuery[uuid.UUID | None] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
) -> StreamListView:
    """Streams, newest first, filtered by `state` (a state name) and camera."""
    streams = services_of(request.app).streams
    page = await streams.summaries(parse_state(state_name), camera_id, limit, offset)
    return stream_list_view(page.rows, page.total, limit, offset)


@get("/{stream_id:str}", **scoped("streams:read"))
async def get_stream(
    request: Request[Any, Any, Any], stream_id: FromPath[str]
) -> StreamDetailView:
    """A stream with its codec, producer and consumer counts."""
    ident = parse_id(stream_id, "stream_id")
    services = services_of(request.app)
    row = await services.streams.get(ident)
    return stream_detail(row, await services.streams.producer(ident),
                         await services.consumers.counts(ident))


@get("/{stream_id:str}/health", **scoped("streams:read"))
async def stream_health(request: Request[Any, Any, Any], stream_id: FromPath[str]) -> HealthView:
    """Ingest metrics as last reported by the media node that owns the stream."""
    ident = parse_id(stream_id, "stream_id")
    services = services_of(request.app)
    return health_view(await services.streams.get(ident), services.settings.media.lease_s)


@delete("/{stream_id:str}", status_code=204, **scoped("streams:write"))
async def delete_stream(request: Request[Any, Any, Any], stream_id: FromPath[str]) -> None:
    """Stop a stream: its ingest ends on its media node, its consumers close, and it moves
    through STOPPED to CLOSED."""
    ident = parse_id(stream_id, "stream_id")
    await services_of(request.app).control.stop(ident)


@post("/", status_code=202, **scoped("streams:write"))
async def create_stream(
    request: Request[Any, Any, Any], data: JSONBody[CreateStreamBody]
) -> Response[StreamDetailView]:
    """Start a camera's stream without waiting: 202 with the stream INITIALIZING, to poll.

    When the camera already has an active stream it is returned with 200.
    """
    services = services_of(request.app)
    camera = parse_id(data.camera_id, "camera_id")
    await services.devices.get(camera)
    row, created, _ = await services.control.begin(camera)
    detail = stream_detail(row, await services.streams.producer(row.id),
                           await services.consumers.counts(row.id))
    return Response(detail, status_code=202 if created else 200)


router = Router(
    path="/v2/streams",
    route_handlers=[list_streams, get_stream, stream_health, delete_stream, create_stream],
    tags=["streams"],
)
