"""Guide §3.3 and §3.4: router capabilities and WebRTC consumers (the mediasoup-client flow)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from litestar import Request, Router, delete, get, post
from litestar.params import FromPath, JSONBody

from api.auth import scoped
from api.consumer_views import (
    CandidateView,
    ConnectView,
    ConsumerListView,
    ConsumeView,
    RouterCapabilitiesView,
    consume_view,
    consumer_list_view,
)
from api.params import parse_id
from api.schemas import ConnectBody, ConsumeBody, IceCandidateBody
from api.state import Services, caller, services_of
from core.consumers import ConsumerRecord, ConsumerState
from core.errors import Conflict, InvalidInput, MediaUnavailable, NotFound
from core.stream_states import StreamState
from core.streams import StreamRecord
from jobs.node.protocol import AddCandidate, CloseConsumer, Connect, Consume
from media.webrtc import router_rtp_capabilities


async def admit_consumer(request: Request[Any, Any, Any], stream: StreamRecord,
                         consumer_id: uuid.UUID) -> None:
    """VAS_MAX_CONSUMERS_PER_CLIENT, after the node opened the consumer: a consumer over the
    caller's bound is closed again and the request answered 429."""
    services = services_of(request.app)
    await services.consumer_quota.admit_or_undo(
        caller(request), consumer_id,
        lambda: close_consumer(services, str(stream.id), str(consumer_id)))


async def live_stream(services: Services, stream_id: str) -> StreamRecord:
    row = await services.streams.get(parse_id(stream_id, "stream_id"))
    if row.state is not StreamState.LIVE:
        raise Conflict(f"Stream is {row.state}; consumers attach only to LIVE streams")
    return row


async def find_consumer(services: Services, stream: StreamRecord,
                        consumer_id: str) -> ConsumerRecord:
    return await services.consumers.get(stream.id, parse_id(consumer_id, "consumer_id"))


async def close_consumer(services: Services, stream_id: str, consumer_id: str) -> None:
    """Close a consumer (or WHEP session) on its node; recorded closed even if the node is
    gone. Idempotent once closed."""
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    row = await find_consumer(services, stream, consumer_id)
    if row.state is ConsumerState.CLOSED:
        return
    with contextlib.suppress(MediaUnavailable, Conflict, NotFound):
        node = await services.control.owner(stream)
        await services.jobs.close_consumer(node, CloseConsumer(stream_id=stream.id,
                                                               consumer_id=row.id))
    await services.consumers.close(row.id)


@get("/{stream_id:str}/router-capabilities", **scoped("streams:read"))
async def router_capabilities(
    request: Request[Any, Any, Any], stream_id: FromPath[str]
) -> RouterCapabilitiesView:
    """RTP capabilities for mediasoup-client's `Device.load`, with the stream's H.264 profile,
    and Opus when the stream's camera sends audio."""
    services = services_of(request.app)
    row = await services.streams.get(parse_id(stream_id, "stream_id"))
    if row.webrtc_refusal:
        raise InvalidInput(f"This stream cannot be consumed over WebRTC: {row.webrtc_refusal}")
    if not row.profile_level_id:
        raise Conflict(f"Stream is {row.state}; its codec is not known yet")
    return {"rtp_capabilities": router_rtp_capabilities(row.profile_level_id,
                                                        audio=row.has_audio)}


@post("/{stream_id:str}/consume", status_code=201, **scoped("streams:consume"))
async def consume(
    request: Request[Any, Any, Any], stream_id: FromPath[str], data: JSONBody[ConsumeBody]
) -> ConsumeView:
    """Attach a consumer: the transport (ICE-lite, DTLS) and RTP parameters for the client.

    `kind` (VAS): `video` (the default) or `audio` (the camera's sound as Opus; the
    stream's `producers.audio`). 409 unless the stream is LIVE; 400 when
    `rtp_capabilities` cannot receive the stream, for `kind: audio` on a stream without
    audio, and for another kind; 429 when the caller has VAS_MAX_CONSUMERS_PER_CLIENT
    open consumers already (either kind counts); 503 when the stream's media node does
    not answer within 10 s.
    """
    services = services_of(request.app)
    stream = await live_stream(services, stream_id)
    if data.kind == "audio" and not stream.has_audio:
        raise InvalidInput("This stream has no audio: its camera sends none "
                           "(codec_config has no 'audio')")
    await services.consumer_quota.check(caller(request))
    node = await services.control.owner(stream)
    consumed = await services.jobs.consume(node, Consume(
        stream_id=stream.id, consumer_id=uuid.uuid4(), client_id=data.client_id,
        rtp_capabilities=data.rtp_capabilities, kind=data.kind))
    await admit_consumer(request, stream, consumed.consumer_id)
    return consume_view(consumed.consumer_id, consumed.transport, consumed.rtp_parameters)


@post("/{stream_id:str}/consumers/{consumer_id:str}/connect", status_code=200,
      **scoped("streams:consume"))
async def connect(
    request: Request[Any, Any, Any], stream_id: FromPath[str], consumer_id: FromPath[str],
    data: JSONBody[ConnectBody],
) -> ConnectView:
    """Give the client's DTLS parameters; answers at once while ICE and DTLS complete."""
    services = services_of(request.app)
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    row = await find_consumer(services, stream, consumer_id)
    node = await services.control.owner(stream)
    connected = await services.jobs.connect(node, Connect(
        stream_id=stream.id, consumer_id=row.id, dtls_parameters=data.dtls_parameters))
    return {"status": "connected", "consumer_id": str(row.id),
            "transport_id": connected.transport_id}


@post("/{stream_id:str}/consumers/{consumer_id:str}/ice-candidate", status_code=200,
      **scoped("streams:consume"))
async def ice_candidate(
    request: Request[Any, Any, Any], stream_id: FromPath[str], consumer_id: FromPath[str],
    data: JSONBody[IceCandidateBody],
) -> CandidateView:
    """Trickle a client candidate (optional: the server is ICE-lite and learns the
    client's address from its connectivity checks)."""
    services = services_of(request.app)
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    row = await find_consumer(services, stream, consumer_id)
    node = await services.control.owner(stream)
    await services.jobs.add_candidate(node, AddCandidate(
        stream_id=stream.id, consumer_id=row.id, candidate=data.candidate))
    return {"status": "acknowledged", "consumer_id": str(row.id)}


@get("/{stream_id:str}/consumers", **scoped("streams:read"))
async def list_consumers(
    request: Request[Any, Any, Any], stream_id: FromPath[str]
) -> ConsumerListView:
    """Every consumer of the stream, closed ones included, newest first."""
    services = services_of(request.app)
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    return consumer_list_view(stream.id, await services.consumers.of_stream(stream.id))


@delete("/{stream_id:str}/consumers/{consumer_id:str}", status_code=204,
        **scoped("streams:consume"))
async def delete_consumer(
    request: Request[Any, Any, Any], stream_id: FromPath[str], consumer_id: FromPath[str]
) -> None:
    """Detach and close a consumer (idempotent once closed)."""
    await close_consumer(services_of(request.app), stream_id, consumer_id)


router = Router(
    path="/v2/streams",
    route_handlers=[router_capabilities, consume, connect, ice_candidate, list_consumers,
                    delete_consumer],
    tags=["webrtc"],
)
