"""Guide §3.3 and §3.4: router capabilities and WebRTC consumers (the mediasoup-client flow)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from litestar import Request, Router, delete, get, post
from litestar.params import FromPath, JSONBody

from api.auth import scoped
from api.params import parse_id
from api.schemas import ConnectBody, ConsumeBody, IceCandidateBody
from api.state import Services, services_of
from core.clock import iso, utcnow
from core.errors import Conflict, MediaUnavailable, NotFound
from core.stream_states import StreamState
from core.tables import Consumer
from media.webrtc import router_rtp_capabilities


async def live_stream(services: Services, stream_id: str) -> dict[str, Any]:
    row = await services.streams.get(parse_id(stream_id, "stream_id"))
    if row["state"] != StreamState.LIVE.value:
        raise Conflict(f"Stream is {row['state']}; consumers attach only to LIVE streams")
    return row


async def find_consumer(stream: dict[str, Any], consumer_id: str) -> dict[str, Any]:
    ident = parse_id(consumer_id, "consumer_id")
    row: dict[str, Any] | None = await Consumer.select().where(
        (Consumer.id == ident) & (Consumer.stream_id == stream["id"])
    ).first()
    if row is None:
        raise NotFound(f"Consumer {ident} not found")
    return row


async def close_consumer(services: Services, stream_id: str, consumer_id: str) -> None:
    """Close a consumer (or WHEP session) on its node; recorded closed even if the node is
    gone. Idempotent once closed."""
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    row = await find_consumer(stream, consumer_id)
    if row["state"] == "CLOSED":
        return
    with contextlib.suppress(MediaUnavailable, Conflict, NotFound):
        await services.control.on_owner(stream, "close", row["id"])
    await Consumer.update({Consumer.state: "CLOSED", Consumer.closed_at: utcnow()}).where(
        (Consumer.id == row["id"]) & (Consumer.state != "CLOSED"))


@get("/{stream_id:str}/router-capabilities", **scoped("streams:read"))
async def router_capabilities(
    request: Request[Any, Any, Any], stream_id: FromPath[str]
) -> dict[str, Any]:
    """RTP capabilities for mediasoup-client's `Device.load`, with the stream's H.264 profile."""
    services = services_of(request.app)
    row = await services.streams.get(parse_id(stream_id, "stream_id"))
    video = (row["codec_config"] or {}).get("video") or {}
    if not video.get("profile"):
        raise Conflict(f"Stream is {row['state']}; its codec is not known yet")
    return {"rtp_capabilities": router_rtp_capabilities(video["profile"])}


@post("/{stream_id:str}/consume", status_code=201, **scoped("streams:consume"))
async def consume(
    request: Request[Any, Any, Any], stream_id: FromPath[str], data: JSONBody[ConsumeBody]
) -> dict[str, Any]:
    """Attach a consumer: the transport (ICE-lite, DTLS) and RTP parameters for the client.

    409 unless the stream is LIVE; 400 when `rtp_capabilities` cannot receive the stream;
    503 when the stream's media node does not answer within 10 s.
    """
    services = services_of(request.app)
    stream = await live_stream(services, stream_id)
    result = await services.control.on_owner(
        stream, "consume", uuid.uuid4(), data.client_id, data.rtp_capabilities
    )
    return {"consumer_id": result["consumer_id"], "transport": result["transport"],
            "rtp_parameters": result["rtp_parameters"]}


@post("/{stream_id:str}/consumers/{consumer_id:str}/connect", status_code=200,
      **scoped("streams:consume"))
async def connect(
    request: Request[Any, Any, Any], stream_id: FromPath[str], consumer_id: FromPath[str],
    data: JSONBody[ConnectBody],
) -> dict[str, Any]:
    """Give the client's DTLS parameters; answers at once while ICE and DTLS complete."""
    services = services_of(request.app)
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    row = await find_consumer(stream, consumer_id)
    result = await services.control.on_owner(stream, "connect", row["id"], data.dtls_parameters)
    return {"status": "connected", "consumer_id": str(row["id"]),
            "transport_id": result["transport_id"]}


@post("/{stream_id:str}/consumers/{consumer_id:str}/ice-candidate", status_code=200,
      **scoped("streams:consume"))
async def ice_candidate(
    request: Request[Any, Any, Any], stream_id: FromPath[str], consumer_id: FromPath[str],
    data: JSONBody[IceCandidateBody],
) -> dict[str, Any]:
    """Trickle a client candidate (optional: the server is ICE-lite and learns the
    client's address from its connectivity checks)."""
    services = services_of(request.app)
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    row = await find_consumer(stream, consumer_id)
    await services.control.on_owner(stream, "add_candidate", row["id"], data.candidate)
    return {"status": "acknowledged", "consumer_id": str(row["id"])}


@get("/{stream_id:str}/consumers", **scoped("streams:read"))
async def list_consumers(
    request: Request[Any, Any, Any], stream_id: FromPath[str]
) -> dict[str, Any]:
    """Every consumer of the stream, closed ones included, newest first."""
    services = services_of(request.app)
    stream = await services.streams.get(parse_id(stream_id, "stream_id"))
    rows = await Consumer.select().where(Consumer.stream_id == stream["id"]).order_by(
        Consumer.created_at, ascending=False)
    return {
        "stream_id": str(stream["id"]),
        "total_consumers": len(rows),
        "active_consumers": sum(1 for r in rows if r["state"] == "CONNECTED"),
        "consumers": [{
            "id": str(r["id"]), "client_id": r["client_id"], "state": r["state"],
            "created_at": iso(r["created_at"]), "last_seen_at": iso(r["last_seen_at"]),
            "closed_at": iso(r["closed_at"]),
        } for r in rows],
    }


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
