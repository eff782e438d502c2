"""A stream's Router, as mediasoup's `Router` is one: it owns the stream's fan-out, its
consumer transports, its WHEP and server-offer sessions, and closes them with itself.

The media node keeps one Router per stream and only mirrors what happens into its rows:
`on_close(consumer_id, kind)` says when a consumer ("transport") or a WHEP session
("whep") ended, whatever ended it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from media.webrtc.capabilities import (
    consumer_rtp_parameters,
    random_ssrc,
    router_rtp_capabilities,
)
from media.webrtc.consumer_transport import ConsumerTransport
from media.webrtc.errors import KindUnavailable
from media.webrtc.fanout import Fanout, SnapshotSource
from media.webrtc.server_offer import ServerOfferSession
from media.webrtc.settings import WebRtcSettings
from media.webrtc.whep import TrackSource, WhepSession

logger = logging.getLogger(__name__)

OnClose = Callable[[str, str], None]


class Router:
    """One stream's WebRTC egress; build and use it on the media loop."""

    def __init__(
        self,
        gop_cache: SnapshotSource | None,
        settings: WebRtcSettings,
        profile_level_id: str | None = None,
        name: str = "",
    ) -> None:
        self.fanout = Fanout(gop_cache, name=name)
        self.settings = settings
        #: The camera's H.264 profile; known once the ingest has opened the camera.
        self.profile_level_id = profile_level_id
        self.name = name
        self.on_close: OnClose | None = None
        self._transports: dict[str, ConsumerTransport] = {}
        self._whep: dict[str, WhepSession] = {}
        #: Other kinds a consumer, WHEP or server-offer session may take (the stream's
        #: audio), see
        #: TrackSource.
        self.sources: list[TrackSource] = []
        self._closed = False

    @property
    def rtp_capabilities(self) -> dict[str, Any]:
        """What a mediasoup-client `Device.load` needs, with the stream's profile (and
        Opus while the stream has audio)."""
        return router_rtp_capabilities(self.profile_level_id,
                                       audio=self._source("audio") is not None)

    @property
    def count(self) -> int:
        """Consumers (of any kind) and WHEP sessions currently open."""
        return len(self._transports) + len(self._whep)

    @property
    def video_count(self) -> int:
        """Video consumers and WHEP sessions currently open (what the video costs)."""
        return sum(1 for t in self._transports.values() if t.kind == "video") + len(self._whep)

    async def create_consumer(
        self, consumer_id: str, rtp_capabilities: Any, *, kind: str = "video",
        cname: str | None = None,
    ) -> tuple[ConsumerTransport, dict[str, Any]]:
        """A consumer transport of `kind` ("video": fed by the fan-out; another kind: by
        that kind's source), and its RTP parameters for the client.

        Raises CapabilityMismatch when `rtp_capabilities` cannot receive the stream, and
        KindUnavailable when the stream has no media of `kind`.
        """
        self._check_open()
        source = None
        if kind != "video":
            source = self._source(kind)
            if source is None:
                raise KindUnavailable(f"the stream has no {kind}")
        rtp_parameters = consumer_rtp_parameters(
            rtp_capabilities, router_rtp_capabilities(self.profile_level_id, audio=kind == "audio"),
            ssrc=random_ssrc(), mid="0", cname=cname or f"vas-{consumer_id[:8]}", kind=kind,
        )
        track = self.fanout.subscribe() if source is None else source.subscribe()
        if track is None:
            raise KindUnavailable(f"the stream has no {kind} now")
        transport = await ConsumerTransport.create(
            settings=self.settings, track=track, rtp_parameters=rtp_parameters,
            transport_id=f"transport-{consumer_id}",
            on_close=lambda _: self._forget(consumer_id, "transport"),
        )
        self._transports[consumer_id] = transport
        return transport, rtp_parameters

    async def create_whep_session(self, session_id: str, offer_sdp: str) -> tuple[WhepSession, str]:
        """A WHEP session answering `offer_sdp`: (the session, the SDP answer).

        Raises InvalidRemoteParameters or CapabilityMismatch for an unusable offer; the
        session is closed then.
        """
        self._check_open()
        session = WhepSession(
            fanout=self.fanout, settings=self.settings, profile_level_id=self.profile_level_id,
            session_id=session_id, sources=self.sources,
        )
        try:
            answer = await session.answer(offer_sdp)
        except BaseException:
            await session.close()
            raise
        session.on_close = lambda _: self._forget(session_id, "whep")
        self._whep[session_id] = session
        return session, answer

    async def create_offer_session(
        self, session_id: str, baseline: Router | None = None,
    ) -> tuple[ServerOfferSession, str]:
        """A server-offer session (the viewer answers): (the session, the SDP offer). With
        `baseline`, the offer lists that Router's H.264 too; a session whose answer takes
        only that one is then handed over to it (`hand_over`)."""
        self._check_open()
        session = ServerOfferSession(
            fanout=self.fanout, settings=self.settings, profile_level_id=self.profile_level_id,
            session_id=session_id, sources=self.sources,
            baseline=None if baseline is None else baseline.fanout,
            baseline_profile=None if baseline is None else baseline.profile_level_id,
        )
        try:
            offer = await session.offer()
        except BaseException:
            await session.close()
            raise
        session.on_close = lambda _: self._forget(session_id, "webrtc")
        self._whep[session_id] = session
        return session, offer

    def hand_over(self, session_id: str, other: Router) -> None:
        """Make `other` the owner of a session (it sends from that Router's fan-out now)."""
        session = self._whep.pop(session_id, None)
        if session is not None:
            session.on_close = lambda _: other._forget(session_id, "webrtc")
            other._whep[session_id] = session

    def offer_session(self, session_id: str) -> ServerOfferSession | None:
        session = self._whep.get(session_id)
        return session if isinstance(session, ServerOfferSession) else None

    def consumer(self, consumer_id: str) -> ConsumerTransport | None:
        return self._transports.get(consumer_id)

    def whep_session(self, session_id: str) -> WhepSession | None:
        return self._whep.get(session_id)

    def transports(self) -> list[tuple[str, ConsumerTransport]]:
        """The open consumer transports, by consumer id."""
        return list(self._transports.items())

    async def close_consumer(self, consumer_id: str) -> bool:
        """Close a consumer or WHEP session; False when the router has no such one."""
        transport = self._transports.get(consumer_id)
        session = self._whep.get(consumer_id)
        if transport is None and session is None:
            return False
        if transport is not None:
            await transport.close()
        if session is not None:
            await session.close()
        return True

    async def close(self) -> None:
        """Close every consumer and session, then the fan-out."""
        self._closed = True
        await asyncio.gather(*(t.close() for t in list(self._transports.values())),
                             *(s.close() for s in list(self._whep.values())),
                             return_exceptions=True)
        self.fanout.close()

    def _source(self, kind: str) -> TrackSource | None:
        """The source of `kind` while it has something to send."""
        return next((s for s in self.sources if s.kind == kind and s.available()), None)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"router {self.name} is closed")

    def _forget(self, consumer_id: str, kind: str) -> None:
        """on_close of a transport or session (any cause)."""
        self._transports.pop(consumer_id, None)
        self._whep.pop(consumer_id, None)
        if self.on_close is not None:
            try:
                self.on_close(consumer_id, kind)
            except Exception:
                logger.exception("%s: on_close of %s %s failed", self.name, kind, consumer_id)
