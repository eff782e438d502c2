"""The viewers of one stream on its media node: the stream's Router does the media; this
keeps `vas_consumer` in step with it and turns media errors into the refusals of
`core.errors`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from core.consumers import ConsumerService, ConsumerState
from core.errors import Conflict, InvalidInput, NotFound
from core.settings import MediaSettings
from jobs.node.protocol import Connected, Consumed, Done, SessionOffer, WhepAnswer
from jobs.node.tasks import TaskSet
from media.gop_cache import GopCache
from media.webrtc import (
    CapabilityMismatch,
    ConsumerTransport,
    InvalidRemoteParameters,
    Router,
    ServerOfferSession,
    TransportStateError,
    WebRtcSettings,
    WhepSession,
)

logger = logging.getLogger(__name__)

# How often a WHEP session's state is looked at while it connects: media flows as soon
# as the peer connection is up, and the consumer list should say CONNECTED by the time a
# viewer has its first frames.
WHEP_POLL_S = 0.01
WHEP_POLLS = 3000
# A server offer that no answer follows within this long is closed (its fan-out seat too).
ANSWER_TIMEOUT_S = 30.0


def webrtc_settings(media: MediaSettings) -> WebRtcSettings:
    return WebRtcSettings(
        announced_ips=media.announced_ips, port_min=media.port_min, port_max=media.port_max,
        silence_timeout_s=media.webrtc_silence_s,
    )


class StreamViewers:
    """Consumers and WHEP sessions of one stream; every method runs on the node's loop."""

    def __init__(self, stream_id: uuid.UUID, gop_cache: GopCache, media: MediaSettings,
                 consumers: ConsumerService | None = None,
                 on_demand: Callable[[int], None] | None = None) -> None:
        self.stream_id = stream_id
        #: Told how many viewers there are (or are about to be) at every change: the
        #: pipeline runs its transcoder while there are any.
        self.on_demand = on_demand
        #: Why this stream cannot be watched over WebRTC (transcode 'never'), or None.
        self.refusal: str | None = None
        self.router = Router(gop_cache, webrtc_settings(media), name=f"stream {stream_id}")
        self.router.on_close = self._closed
        self._max_viewers = media.max_consumers_per_stream
        self._consumers = consumers or ConsumerService()
        self._tasks = TaskSet()

    @property
    def count(self) -> int:
        return self.router.count

    async def consume(
        self, consumer_id: uuid.UUID, client_id: str, rtp_capabilities: Any
    ) -> Consumed:
        self._check_room()
        self._demand(1)
        try:
            transport, rtp_parameters = await self.router.create_consumer(
                str(consumer_id), rtp_capabilities, cname=f"vas-{self.stream_id.hex[:8]}")
        except CapabilityMismatch as exc:
            raise InvalidInput(f"rtp_capabilities cannot receive this stream: {exc}") from None
        finally:
            self._demand(0)
        await self._consumers.add(consumer_id, self.stream_id, client_id, ConsumerState.NEW,
                                  transport.id)
        return Consumed(consumer_id=consumer_id, transport=transport.parameters(),
                        rtp_parameters=rtp_parameters)

    async def connect(self, consumer_id: uuid.UUID, dtls_parameters: Any) -> Connected:
        transport = self._transport(consumer_id)
        try:
            transport.connect(dtls_parameters)
        except InvalidRemoteParameters as exc:
            raise InvalidInput(f"dtls_parameters: {exc}") from None
        except TransportStateError as exc:
            raise Conflict(str(exc)) from None
        self._tasks.spawn(self._follow(consumer_id, transport))
        return Connected(consumer_id=consumer_id, transport_id=transport.id)

    async def add_candidate(self, consumer_id: uuid.UUID, candidate: Any) -> Done:
        transport = self._transport(consumer_id)
        try:
            await transport.add_remote_candidate(candidate)
        except (InvalidRemoteParameters, ValueError) as exc:
            raise InvalidInput(f"candidate: {exc}") from None
        return Done()

    async def close(self, consumer_id: uuid.UUID) -> Done:
        if not await self.router.close_consumer(str(consumer_id)):
            raise NotFound(f"Consumer {consumer_id} not found")
        return Done()

    async def whep_offer(self, session_id: uuid.UUID, offer_sdp: str) -> WhepAnswer:
        self._check_room()
        self._demand(1)
        try:
            session, answer = await self.router.create_whep_session(str(session_id), offer_sdp)
        except (InvalidRemoteParameters, CapabilityMismatch) as exc:
            raise InvalidInput(f"SDP offer: {exc}") from None
        finally:
            self._demand(0)
        await self._consumers.add(session_id, self.stream_id, "whep", ConsumerState.CONNECTING,
                                  f"whep-{session_id}")
        self._tasks.spawn(self._follow_whep(session_id, session))
        return WhepAnswer(answer=answer)

    async def whep_patch(self, session_id: uuid.UUID, sdpfrag: str) -> Done:
        session = self.router.whep_session(str(session_id))
        if session is None:
            raise NotFound(f"WHEP session {session_id} not found")
        try:
            await session.add_candidates(sdpfrag)
        except (InvalidRemoteParameters, TransportStateError) as exc:
            raise InvalidInput(str(exc)) from None
        return Done()

    async def offer_session(self, session_id: uuid.UUID, client_id: str) -> SessionOffer:
        """A server-offer session (OmniSight live WebRTC): its SDP offer."""
        self._check_codec()
        self._demand(1)
        try:
            session, offer = await self.router.create_offer_session(str(session_id))
        finally:
            self._demand(0)
        await self._consumers.add(session_id, self.stream_id, client_id, ConsumerState.NEW,
                                  f"webrtc-{session_id}")
        self._tasks.spawn(self._expire_unanswered(session))
        return SessionOffer(offer=offer)

    async def _expire_unanswered(self, session: ServerOfferSession) -> None:
        # Polled, not one long sleep: a session closed meanwhile (stream stopped, viewer
        # gone) ends this task at once, so stopping a stream does not wait for it.
        for _ in range(int(ANSWER_TIMEOUT_S / WHEP_POLL_S / 10)):
            if session.answered or session.state in ("failed", "closed"):
                return
            await asyncio.sleep(WHEP_POLL_S * 10)
        if not session.answered:
            logger.info("server-offer session %s: no answer, closing", session.id)
            await session.close()

    async def answer_session(self, session_id: uuid.UUID, answer_sdp: str) -> Done:
        session = self.router.offer_session(str(session_id))
        if session is None:
            raise NotFound(f"WebRTC session {session_id} not found")
        try:
            await session.accept(answer_sdp)
        except (InvalidRemoteParameters, CapabilityMismatch) as exc:
            raise InvalidInput(f"SDP answer: {exc}") from None
        except TransportStateError as exc:
            raise Conflict(str(exc)) from None
        await self._consumers.set_state(session_id, ConsumerState.CONNECTING)
        self._tasks.spawn(self._follow_whep(session_id, session))
        return Done()

    async def report(self) -> None:
        """Heartbeat: write when each viewer was last heard from."""
        for consumer_id, transport in self.router.transports():
            seen = datetime.fromtimestamp(transport.last_seen_at, UTC)
            await self._consumers.seen(uuid.UUID(consumer_id), seen)

    async def close_all(self) -> None:
        await self.router.close()
        await self._tasks.join()

    # -- internals -----------------------------------------------------------------

    def _demand(self, joining: int) -> None:
        """Tell on_demand the viewer count, plus ``joining`` about to be added."""
        if self.on_demand is not None:
            try:
                self.on_demand(self.router.count + joining)
            except Exception:
                logger.exception("stream %s: on_demand failed", self.stream_id)

    def _check_codec(self) -> None:
        if self.refusal is not None:
            raise InvalidInput(f"This stream cannot be consumed over WebRTC: {self.refusal}")

    def _check_room(self) -> None:
        """VAS_MAX_CONSUMERS_PER_STREAM: consumers and WHEP sessions together (409 beyond),
        and no WebRTC at all for a stream whose codec is refused (400)."""
        self._check_codec()
        if self.router.count >= self._max_viewers:
            raise Conflict(f"Stream has reached its limit of {self._max_viewers} viewers "
                           "(VAS_MAX_CONSUMERS_PER_STREAM); close one first")

    def _transport(self, consumer_id: uuid.UUID) -> ConsumerTransport:
        transport = self.router.consumer(str(consumer_id))
        if transport is None:
            raise NotFound(f"Consumer {consumer_id} not found")
        return transport

    async def _follow(self, consumer_id: uuid.UUID, transport: ConsumerTransport) -> None:
        # Written after the reply: mediasoup-client starts ICE only once `connect` has
        # answered, so a database write before it delayed every viewer's first frame.
        await self._consumers.set_state(consumer_id, ConsumerState.CONNECTING)
        if await transport.wait_connected():
            await self._consumers.set_state(consumer_id, ConsumerState.CONNECTED)

    async def _follow_whep(self, session_id: uuid.UUID, session: WhepSession) -> None:
        for _ in range(WHEP_POLLS):
            if session.state == "connected":
                await self._consumers.set_state(session_id, ConsumerState.CONNECTED)
                return
            if session.state in ("failed", "closed"):
                return
            await asyncio.sleep(WHEP_POLL_S)

    def _closed(self, consumer_id: str, kind: str) -> None:
        """The Router's on_close (any cause): show the consumer closed."""
        logger.info("%s consumer %s of stream %s closed", kind, consumer_id, self.stream_id)
        self._demand(0)
        self._tasks.spawn(self._consumers.close(uuid.UUID(consumer_id)))
