"""OmniSight live WebRTC with a server offer (docs/omnisight.md, "Live WebRTC"):

`GET /cameras/:id/live/webrtc` → `{"sdpOffer", "sessionId", "iceServers"}`; the viewer answers
with `POST /cameras/:id/live/webrtc/{sessionId}` `{"sdpAnswer"}` (204) and ends with `DELETE`
on the same URL. The session is a consumer of the stream's fan-out on its media node, listed
among `/v2/streams/{id}/consumers` like a WHEP session.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, post
from litestar.params import FromPath, JSONBody

from api.omnisight.guards import omni_scoped
from api.omnisight.responses import error_responses
from api.state import Services, caller, services_of
from core.consumers import ConsumerState
from core.errors import Conflict, MediaUnavailable, NotFound
from core.recording_sessions import parse_id
from core.stream_states import StreamState
from core.streams import StreamRecord
from jobs.node.protocol import AnswerSession, CloseConsumer, OfferSession

SCOPE = "streams:consume"

ERRORS = error_responses(409, 413, 503)
OFFER_ERRORS = error_responses(409, 413, 429, 503)


class AnswerBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """POST /cameras/:id/live/webrtc/{sessionId}."""

    sdp_answer: Annotated[str, msgspec.Meta(min_length=1, max_length=64 * 1024)]


async def _live(services: Services, camera_id: str) -> StreamRecord:
    camera = parse_id(camera_id, "Camera")
    await services.devices.get(camera)
    stream = await services.streams.active_for_camera(camera)
    if stream is None or stream.state is not StreamState.LIVE:
        raise Conflict("The camera is not streaming: start its stream first",
                       details={"cameraId": str(camera)})
    return stream


async def _session_stream(services: Services, camera_id: str,
                          session_id: str) -> tuple[StreamRecord, uuid.UUID]:
    """The camera's active stream and a session of it (404 for any other id)."""
    camera = parse_id(camera_id, "Camera")
    ident = parse_id(session_id, "WebRTC session")
    stream = await services.streams.active_for_camera(camera)
    if stream is None:
        raise NotFound(f"WebRTC session {ident} not found")
    await services.consumers.get(stream.id, ident)
    return stream, ident


@get("/cameras/{camera_id:str}/live/webrtc", **omni_scoped(SCOPE), responses=OFFER_ERRORS)
async def offer(request: Request[Any, Any, Any], camera_id: FromPath[str]) -> dict[str, Any]:
    """Start a live session: the server's SDP offer (sendonly H.264, and Opus audio bundled
    with it when the camera has sound; candidates included)."""
    services = services_of(request.app)
    stream = await _live(services, camera_id)
    await services.consumer_quota.check(caller(request))
    node = await services.control.owner(stream)
    session_id = uuid.uuid4()
    reply = await services.jobs.offer_session(node, OfferSession(
        stream_id=stream.id, session_id=session_id,
        client_id=str(request.state.principal.client_id)[:128]))
    await services.consumer_quota.admit_or_undo(caller(request), session_id,
                                                lambda: _close(services, stream, session_id))
    return {"sdpOffer": reply.offer, "sessionId": str(session_id), "iceServers": []}


@post("/cameras/{camera_id:str}/live/webrtc/{session_id:str}", status_code=204,
      **omni_scoped(SCOPE), responses=ERRORS)
async def answer(request: Request[Any, Any, Any], camera_id: FromPath[str],
                 session_id: FromPath[str], data: JSONBody[AnswerBody]) -> None:
    """The viewer's SDP answer; media flows once ICE and DTLS connect."""
    services = services_of(request.app)
    stream, ident = await _session_stream(services, camera_id, session_id)
    node = await services.control.owner(stream)
    await services.jobs.answer_session(node, AnswerSession(
        stream_id=stream.id, session_id=ident, answer_sdp=data.sdp_answer))


@delete("/cameras/{camera_id:str}/live/webrtc/{session_id:str}", status_code=204,
        **omni_scoped(SCOPE), responses=ERRORS)
async def end(request: Request[Any, Any, Any], camera_id: FromPath[str],
              session_id: FromPath[str]) -> None:
    """End the session (idempotent once ended)."""
    services = services_of(request.app)
    stream, ident = await _session_stream(services, camera_id, session_id)
    row = await services.consumers.get(stream.id, ident)
    if row.state is ConsumerState.CLOSED:
        return
    await _close(services, stream, ident)


async def _close(services: Services, stream: StreamRecord, ident: uuid.UUID) -> None:
    with contextlib.suppress(MediaUnavailable, Conflict, NotFound):
        node = await services.control.owner(stream)
        await services.jobs.close_consumer(node, CloseConsumer(stream_id=stream.id,
                                                               consumer_id=ident))
    await services.consumers.close(ident)


router = Router(path="/", route_handlers=[offer, answer, end],
                tags=["OmniSight: live WebRTC"])
