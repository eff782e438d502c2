"""WHEP (draft-ietf-wish-whep) per stream, on the same fan-out as the guide's consumers."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, delete, patch, post
from litestar.params import FromPath

from api.auth import scoped
from api.params import parse_id
from api.routes.consumers import admit_consumer, close_consumer, find_consumer, live_stream
from api.state import caller, services_of
from core.errors import InvalidInput
from jobs.node.protocol import WhepOffer, WhepPatch

SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
MAX_SDP = 64 * 1024


async def _body(request: Request[Any, Any, Any], content_type: str) -> str:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != content_type:
        raise InvalidInput(f"Content-Type must be {content_type}")
    raw = await request.body()
    if len(raw) > MAX_SDP:
        raise InvalidInput("body too large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("body must be UTF-8 text") from None


@post("/{stream_id:str}/whep", status_code=201, **scoped("streams:consume"))
async def whep_offer(request: Request[Any, Any, Any], stream_id: FromPath[str]) -> Response[str]:
    """Start a WHEP session: the client's SDP offer in, 201 with the SDP answer and the
    session's `Location` out."""
    services = services_of(request.app)
    stream = await live_stream(services, stream_id)
    offer = await _body(request, SDP)
    session_id = uuid.uuid4()
    await services.consumer_quota.check(caller(request))
    node = await services.control.owner(stream)
    answer = await services.jobs.whep_offer(node, WhepOffer(
        stream_id=stream.id, session_id=session_id, offer_sdp=offer))
    await admit_consumer(request, stream, session_id)
    location = f"/v2/streams/{stream.id}/whep/{session_id}"
    return Response(answer.answer, status_code=201, media_type=SDP,
                    headers={"Location": location, "ETag": f'"{session_id}"'})


@patch("/{stream_id:str}/whep/{session_id:str}", status_code=204, **scoped("streams:consume"))
async def whep_trickle(
    request: Request[Any, Any, Any], stream_id: FromPath[str], session_id: FromPath[str]
) -> None:
    """Trickle ICE candidates to a session (an SDP fragment)."""
    services = services_of(request.app)
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    row = await find_consumer(services, stream, session_id)
    sdpfrag = await _body(request, TRICKLE)
    node = await services.control.owner(stream)
    await services.jobs.whep_patch(node, WhepPatch(stream_id=stream.id, session_id=row.id,
                                                   sdpfrag=sdpfrag))


@delete("/{stream_id:str}/whep/{session_id:str}", status_code=200, **scoped("streams:consume"))
async def whep_delete(
    request: Request[Any, Any, Any], stream_id: FromPath[str], session_id: FromPath[str]
) -> None:
    """End a WHEP session."""
    await close_consumer(services_of(request.app), stream_id, session_id)


router = Router(path="/v2/streams", route_handlers=[whep_offer, whep_trickle, whep_delete],
                tags=["webrtc"])
