"""The viewers of one stream on its media node: mediasoup-style consumers and WHEP sessions,
all fed by one fan-out, each mirrored in `vas_consumer`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from core.clock import utcnow
from core.settings import MediaSettings
from core.tables import Consumer
from media.gop_cache import GopCache
from media.webrtc import (
    CapabilityMismatch,
    ConsumerTransport,
    Fanout,
    InvalidRemoteParameters,
    TransportStateError,
    WebRtcSettings,
    WhepSession,
    consumer_rtp_parameters,
    random_ssrc,
    router_rtp_capabilities,
)

logger = logging.getLogger(__name__)


def refusal(status: int, detail: str) -> dict[str, Any]:
    """A control answer the API turns into a 4xx."""
    return {"ok": False, "status": status, "detail": detail}


def webrtc_settings(media: MediaSettings) -> WebRtcSettings:
    return WebRtcSettings(
        announced_ips=media.announced_ips, port_min=media.port_min, port_max=media.port_max,
        silence_timeout_s=media.webrtc_silence_s,
    )


class StreamViewers:
    """Consumers and WHEP sessions of one stream; every method runs on the node's loop."""

    def __init__(self, stream_id: uuid.UUID, gop_cache: GopCache, media: MediaSettings) -> None:
        self.stream_id = stream_id
        self.fanout = Fanout(gop_cache, name=f"stream {stream_id}")
        self._settings = webrtc_settings(media)
        self._transports: dict[uuid.UUID, ConsumerTransport] = {}
        self._whep: dict[uuid.UUID, WhepSession] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.profile_level_id: str | None = None

    @property
    def count(self) -> int:
        return len(self._transports) + len(self._whep)

    async def consume(
        self, consumer_id: uuid.UUID, client_id: str, rtp_capabilities: Any
    ) -> dict[str, Any]:
        router = router_rtp_capabilities(self.profile_level_id)
        try:
            rtp_parameters = consumer_rtp_parameters(
                rtp_capabilities, router, ssrc=random_ssrc(), mid="0",
                cname=f"vas-{self.stream_id.hex[:8]}",
            )
        except CapabilityMismatch as exc:
            return refusal(400, f"rtp_capabilities cannot receive this stream: {exc}")
        transport = await ConsumerTransport.create(
            settings=self._settings, track=self.fanout.subscribe(), rtp_parameters=rtp_parameters,
            transport_id=f"transport-{consumer_id}",
            on_close=lambda _: self._closed(consumer_id, "transport"),
        )
        self._transports[consumer_id] = transport
        await Consumer(
            id=consumer_id, stream_id=self.stream_id, client_id=client_id, state="NEW",
            transport_id=transport.id, created_at=utcnow(), last_seen_at=utcnow(),
        ).save()
        return {"ok": True, "consumer_id": str(consumer_id), "transport": transport.parameters(),
                "rtp_parameters": rtp_parameters}

    async def connect(self, consumer_id: uuid.UUID, dtls_parameters: Any) -> dict[str, Any]:
        transport = self._transports.get(consumer_id)
        if transport is None:
            return refusal(404, f"Consumer {consumer_id} not found")
        try:
            transport.connect(dtls_parameters)
        except InvalidRemoteParameters as exc:
            return refusal(400, f"dtls_parameters: {exc}")
        except TransportStateError as exc:
            return refusal(409, str(exc))
        await self._set_state(consumer_id, "CONNECTING")
        self._spawn(self._follow(consumer_id, transport))
        return {"ok": True, "consumer_id": str(consumer_id), "transport_id": transport.id}

    async def add_candidate(self, consumer_id: uuid.UUID, candidate: Any) -> dict[str, Any]:
        transport = self._transports.get(consumer_id)
        if transport is None:
            return refusal(404, f"Consumer {consumer_id} not found")
        try:
            await transport.add_remote_candidate(candidate)
        except (InvalidRemoteParameters, ValueError) as exc:
            return refusal(400, f"candidate: {exc}")
        return {"ok": True, "consumer_id": str(consumer_id)}

    async def close(self, consumer_id: uuid.UUID) -> dict[str, Any]:
        transport = self._transports.get(consumer_id)
        session = self._whep.get(consumer_id)
        if transport is None and session is None:
            return refusal(404, f"Consumer {consumer_id} not found")
        if transport is not None:
            await transport.close()
        if session is not None:
            await session.close()
        return {"ok": True}

    async def whep_offer(self, session_id: uuid.UUID, offer_sdp: str) -> dict[str, Any]:
        session = WhepSession(
            fanout=self.fanout, settings=self._settings, profile_level_id=self.profile_level_id,
            session_id=str(session_id), on_close=lambda _: self._closed(session_id, "whep"),
        )
        try:
            answer = await session.answer(offer_sdp)
        except (InvalidRemoteParameters, CapabilityMismatch) as exc:
            await session.close()
            return refusal(400, f"SDP offer: {exc}")
        self._whep[session_id] = session
        await Consumer(
            id=session_id, stream_id=self.stream_id, client_id="whep", state="CONNECTING",
            transport_id=f"whep-{session_id}", created_at=utcnow(), last_seen_at=utcnow(),
        ).save()
        self._spawn(self._follow_whep(session_id, session))
        return {"ok": True, "answer": answer}

    async def whep_patch(self, session_id: uuid.UUID, sdpfrag: str) -> dict[str, Any]:
        session = self._whep.get(session_id)
        if session is None:
            return refusal(404, f"WHEP session {session_id} not found")
        try:
            await session.add_candidates(sdpfrag)
        except (InvalidRemoteParameters, TransportStateError) as exc:
            return refusal(400, str(exc))
        return {"ok": True}

    async def report(self) -> None:
        """Heartbeat: write when each viewer was last heard from."""
        for consumer_id, transport in self._transports.items():
            seen = datetime.fromtimestamp(transport.last_seen_at, UTC)
            await Consumer.update({Consumer.last_seen_at: seen}).where(Consumer.id == consumer_id)

    async def close_all(self) -> None:
        await asyncio.gather(*(t.close() for t in list(self._transports.values())),
                             *(s.close() for s in list(self._whep.values())),
                             return_exceptions=True)
        self.fanout.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- internals -----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, consumer_id: uuid.UUID, transport: ConsumerTransport) -> None:
        if await transport.wait_connected():
            await self._set_state(consumer_id, "CONNECTED")

    async def _follow_whep(self, session_id: uuid.UUID, session: WhepSession) -> None:
        # Checked often: media flows as soon as the peer connection is up, and the consumer
        # list should say CONNECTED by the time a viewer has its first frames.
        for _ in range(3000):
            if session.state == "connected":
                await self._set_state(session_id, "CONNECTED")
                return
            if session.state in ("failed", "closed"):
                return
            await asyncio.sleep(0.01)

    def _closed(self, consumer_id: uuid.UUID, kind: str) -> None:
        """on_close of a transport or session (any cause): forget it and show it closed."""
        self._transports.pop(consumer_id, None)
        self._whep.pop(consumer_id, None)
        logger.info("%s consumer %s of stream %s closed", kind, consumer_id, self.stream_id)
        self._spawn(Consumer.update({Consumer.state: "CLOSED", Consumer.closed_at: utcnow()}).where(
            (Consumer.id == consumer_id) & (Consumer.state != "CLOSED")
        ).run())

    async def _set_state(self, consumer_id: uuid.UUID, state: str) -> None:
        await Consumer.update({Consumer.state: state, Consumer.last_seen_at: utcnow()}).where(
            (Consumer.id == consumer_id) & (Consumer.state != "CLOSED")
        )
