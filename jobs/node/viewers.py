"""The viewers of one stream on its media node: the stream's Router does the media; this
keeps `vas_consumer` in step with it and turns media errors into the refusals of
`core.errors`.

An H.264 stream whose profile some consumers refuse may have a second Router, `baseline`,
fed by the stream's transcoder (constrained baseline): a consumer or WHEP viewer that the
stream's Router refuses for its capabilities is served by that one, and so is a server-offer
session whose answer takes only the baseline format offered beside the camera's
(docs/codecs.md)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

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
    KindUnavailable,
    Router,
    ServerOfferSession,
    TransportStateError,
    WebRtcSettings,
    WhepSession,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

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
        #: Told how many viewers the transcoder-fed Router has (or is about to have) at every
        #: change (`baseline` when there is one, else `router`): the pipeline runs its
        #: transcoder while there are any.
        self.on_demand = on_demand
        #: Why this stream cannot be watched over WebRTC (transcode 'never'), or None.
        self.refusal: str | None = None
        self.router = Router(gop_cache, webrtc_settings(media), name=f"stream {stream_id}")
        self.router.on_close = self._closed
        #: The transcoder's constrained-baseline H.264 for consumers refusing the camera's
        #: profile (see `add_baseline`), or None.
        self.baseline: Router | None = None
        self._media = media
        self._max_viewers = media.max_consumers_per_stream
        self._consumers = consumers or ConsumerService()
        self._tasks = TaskSet()

    def add_baseline(self, gop_cache: GopCache, profile_level_id: str) -> Router:
        """The second Router, for consumers that refuse the camera's H.264 profile; the
        caller feeds its fan-out (the transcoder's output)."""
        router = Router(gop_cache, webrtc_settings(self._media), profile_level_id,
                        name=f"stream {self.stream_id} baseline")
        router.on_close = self._closed
        router.sources = self.router.sources  # the same audio
        self.baseline = router
        return router

    @property
    def count(self) -> int:
        return sum(router.count for router in self._routers())

    async def consume(
        self, consumer_id: uuid.UUID, client_id: str, rtp_capabilities: Any,
        kind: str = "video",
    ) -> Consumed:
        """A mediasoup-style consumer of the stream's video, or of its audio (the stream's
        Opus transcoder, shared with WHEP, runs while audio consumers exist)."""
        self._check_room()
        video = kind == "video"
        cname = f"vas-{self.stream_id.hex[:8]}"
        try:
            if video:  # the camera's Router, or the baseline one for who refuses its profile
                transport, rtp_parameters = await self._on_router(
                    lambda router: router.create_consumer(
                        str(consumer_id), rtp_capabilities, kind=kind, cname=cname))
            else:  # the stream's audio: no video transcoder for it
                transport, rtp_parameters = await self.router.create_consumer(
                    str(consumer_id), rtp_capabilities, kind=kind, cname=cname)
        except CapabilityMismatch as exc:
            what = "this stream" if video else f"this stream's {kind}"
            raise InvalidInput(f"rtp_capabilities cannot receive {what}: {exc}") from None
        except KindUnavailable:
            raise InvalidInput(f"This stream has no {kind}: its camera sends none") from None
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
        for router in self._routers():
            if await router.close_consumer(str(consumer_id)):
                return Done()
        raise NotFound(f"Consumer {consumer_id} not found")

    async def whep_offer(self, session_id: uuid.UUID, offer_sdp: str) -> WhepAnswer:
        self._check_room()
        try:
            session, answer = await self._on_router(
                lambda router: router.create_whep_session(str(session_id), offer_sdp))
        except (InvalidRemoteParameters, CapabilityMismatch) as exc:
            raise InvalidInput(f"SDP offer: {exc}") from None
        await self._consumers.add(session_id, self.stream_id, "whep", ConsumerState.CONNECTING,
                                  f"whep-{session_id}")
        self._tasks.spawn(self._follow_whep(session_id, session))
        return WhepAnswer(answer=answer)

    async def whep_patch(self, session_id: uuid.UUID, sdpfrag: str) -> Done:
        session = next((found for router in self._routers()
                        if (found := router.whep_session(str(session_id))) is not None), None)
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
        self._demand(1, self.router)
        try:
            session, offer = await self.router.create_offer_session(str(session_id),
                                                                    self.baseline)
        finally:
            self._demand(0, self.router)
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
        session = next((found for router in self._routers()
                         if (found := router.offer_session(str(session_id))) is not None), None)
        if session is None:
            raise NotFound(f"WebRTC session {session_id} not found")
        try:
            await session.accept(answer_sdp)
        except (InvalidRemoteParameters, CapabilityMismatch) as exc:
            raise InvalidInput(f"SDP answer: {exc}") from None
        except TransportStateError as exc:
            raise Conflict(str(exc)) from None
        if session.on_baseline and self.baseline is not None:
            self.router.hand_over(str(session_id), self.baseline)
            self._demand(0)  # its transcoder starts now
        await self._consumers.set_state(session_id, ConsumerState.CONNECTING)
        self._tasks.spawn(self._follow_whep(session_id, session))
        return Done()

    async def report(self) -> None:
        """Heartbeat: write when each viewer was last heard from."""
        for consumer_id, transport in (pair for router in self._routers()
                                       for pair in router.transports()):
            seen = datetime.fromtimestamp(transport.last_seen_at, UTC)
            await self._consumers.seen(uuid.UUID(consumer_id), seen)

    async def close_all(self) -> None:
        for router in self._routers():
            await router.close()
        await self._tasks.join()

    # -- internals -----------------------------------------------------------------

    def _routers(self) -> tuple[Router, ...]:
        return (self.router,) if self.baseline is None else (self.router, self.baseline)

    async def _on_router(self, create: Callable[[Router], Awaitable[T]]) -> T:
        """``create`` on the stream's Router; when that one refuses the viewer's
        capabilities (CapabilityMismatch) and there is a baseline Router, on that one (the
        first refusal is kept when both refuse)."""
        try:
            return await self._demanding(self.router, create)
        except CapabilityMismatch as refused:
            if self.baseline is None:
                raise
            try:
                created = await create(self.baseline)
            except CapabilityMismatch:
                raise refused from None
            self._demand(0)  # its transcoder starts now, not for a viewer refused anyway
            return created

    async def _demanding(self, router: Router, create: Callable[[Router], Awaitable[T]]) -> T:
        self._demand(1, router)
        try:
            return await create(router)
        finally:
            self._demand(0, router)

    def _demand(self, joining: int, router: Router | None = None) -> None:
        """Tell on_demand the transcoder-fed Router's video viewer count, plus ``joining``
        about to be added to ``router`` when that is the one."""
        fed = self.baseline or self.router
        if self.on_demand is not None:
            try:
                self.on_demand(fed.video_count + (joining if router is fed else 0))
            except Exception:
                logger.exception("stream %s: on_demand failed", self.stream_id)

    def _check_codec(self) -> None:
        if self.refusal is not None:
            raise InvalidInput(f"This stream cannot be consumed over WebRTC: {self.refusal}")

    def _check_room(self) -> None:
        """VAS_MAX_CONSUMERS_PER_STREAM: consumers of either kind and WHEP sessions together
        (409 beyond),
        and no WebRTC at all for a stream whose codec is refused (400)."""
        self._check_codec()
        if self.count >= self._max_viewers:
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
