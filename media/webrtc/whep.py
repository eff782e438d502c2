"""A WHEP session (draft-ietf-wish-whep) on a plain aiortc `RTCPeerConnection`.

Standard WHEP players POST a recvonly offer and get a sendonly answer; the media comes
from the same `Fanout` as the mediasoup-style consumers, still forwarded without
re-encoding. Unlike those, this side runs full ICE as the answerer, which is what a
peer connection expects. Its candidates are only the announced addresses, on ports of the
configured range: aiortc's own gathering would list every interface of the machine and
ask a public STUN server. The viewer's mDNS candidates are dropped (`without_mdns`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtcpFeedback
from aiortc.sdp import SessionDescription, candidate_from_sdp

from media.webrtc.capabilities import match_h264, router_rtp_capabilities
from media.webrtc.errors import (
    CapabilityMismatch,
    InvalidRemoteParameters,
    TransportStateError,
)
from media.webrtc.fanout import Fanout
from media.webrtc.gathering import gather_announced
from media.webrtc.lean_sender import LeanSender
from media.webrtc.packet_track import PacketTrack
from media.webrtc.settings import WebRtcSettings

logger = logging.getLogger(__name__)


def _answer_codec(
    offered: list[RTCRtpCodecParameters], profile_level_id: str | None
) -> RTCRtpCodecParameters:
    """The offered H.264 payload type that fits the stream, with the stream's parameters.

    aiortc would answer with its own encoder's constrained-baseline parameters; for a
    forwarded stream the answer must describe the camera's profile instead, and must
    use the same matching rules as the mediasoup-style consumers.
    """
    router_codec = router_rtp_capabilities(profile_level_id)["codecs"][0]
    candidates: list[dict[str, Any]] = [
        {
            "mimeType": c.mimeType,
            "clockRate": c.clockRate,
            "parameters": dict(c.parameters),
            "index": i,
        }
        for i, c in enumerate(offered)
    ]
    chosen = offered[int(match_h264(candidates, router_codec)["index"])]
    supported = {(fb["type"], fb.get("parameter")) for fb in router_codec["rtcpFeedback"]}
    return RTCRtpCodecParameters(
        mimeType="video/H264",
        clockRate=90000,
        payloadType=chosen.payloadType,
        rtcpFeedback=[
            RTCRtcpFeedback(type=fb.type, parameter=fb.parameter)
            for fb in chosen.rtcpFeedback
            if (fb.type, fb.parameter) in supported
        ],
        parameters=dict(router_codec["parameters"]),
    )


def is_mdns_candidate(line: str) -> bool:
    """Whether an SDP `a=candidate:` line hides its address behind an mDNS name."""
    fields = line.split()
    return (line.startswith("a=candidate:") and len(fields) > 4
            and fields[4].lower().endswith(".local"))


def without_mdns(sdp: str) -> str:
    """`sdp` without its mDNS candidates (Chromium's "<uuid>.local" host candidates, sent
    by any page without camera permission).

    aiortc resolves each before it answers, and where the server runs nothing answers
    mDNS: every offer waited aioice's 1 s resolution timeout. The server needs no remote
    candidate: it learns the viewer's address from the viewer's connectivity checks (a
    peer-reflexive candidate), as the ICE-lite consumer transports always do. Without
    them, an end-of-candidates would make aioice give up before the first check arrives,
    so it goes too; the session's connect timeout ends a viewer that never checks.
    """
    lines = sdp.splitlines(keepends=True)
    kept = [line for line in lines if not is_mdns_candidate(line)]
    if len(kept) == len(lines):
        return sdp
    return "".join(line for line in kept if line.strip() != "a=end-of-candidates")


class TrackSource(Protocol):
    """Another kind of media a session or consumer may send besides the video (e.g. the
    stream's Opus audio, media.audio_fanout): one track each, stopped when it ends."""

    kind: str  # "audio"
    mime_type: str  # the only codec offered for it, e.g. "audio/opus"

    def available(self) -> bool:
        """Whether it has something to send now (the camera sends audio)."""

    def subscribe(self) -> MediaStreamTrack | None:
        """A new track for one session, or None when there is nothing to send now."""


class WhepSession:
    """One WHEP viewer: `answer(offer)` once, `add_candidates()` for PATCH, `close()`.

    `on_close` is called once when the session ends, including when ICE consent expires.
    """

    def __init__(
        self,
        *,
        fanout: Fanout,
        settings: WebRtcSettings,
        profile_level_id: str | None = None,
        session_id: str | None = None,
        on_close: Callable[[WhepSession], None] | None = None,
        sources: Sequence[TrackSource] = (),
    ) -> None:
        self._sources = sources
        self._extra_tracks: list[MediaStreamTrack] = []
        self.id = session_id or str(uuid.uuid4())
        self.on_close = on_close
        self._fanout = fanout
        self._settings = settings
        self._profile_level_id = profile_level_id
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._pc.on("connectionstatechange", self._on_state)
        self._track: PacketTrack | None = None
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._connect_deadline: asyncio.TimerHandle | None = None

    @property
    def state(self) -> str:
        """The peer connection's state ("new", "connecting", "connected", …)."""
        return str(self._pc.connectionState)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the viewer's offer and return the SDP answer (candidates included).

        Raises CapabilityMismatch when the offer has no usable H.264, and
        InvalidRemoteParameters when the SDP cannot be used.
        """
        if self._pc.signalingState != "stable" or self._track is not None:
            raise TransportStateError("the session already has an offer")
        try:
            offer = SessionDescription.parse(offer_sdp)
        except Exception as exc:  # aiortc raises assorted errors on bad SDP
            raise InvalidRemoteParameters(f"unparsable SDP offer: {exc}") from None
        video = [m for m in offer.media if m.kind == "video"]
        if len(video) != 1 or video[0].direction not in ("recvonly", "sendrecv"):
            raise InvalidRemoteParameters("the offer needs exactly one receiving video section")
        codec = _answer_codec(video[0].rtp.codecs, self._profile_level_id)

        self._track = self._fanout.subscribe()
        transceiver = self._pc.addTransceiver(self._track, direction="sendonly")
        # The lean send path instead of aiortc's per-viewer packetizing sender.
        LeanSender.install(transceiver, self._track)
        h264 = [
            c
            for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() == "video/h264"
        ]
        transceiver.setCodecPreferences(h264)
        self._add_sources(offer)
        try:
            await self._pc.setRemoteDescription(
                RTCSessionDescription(without_mdns(offer_sdp), "offer"))
        except (ValueError, AssertionError) as exc:
            raise InvalidRemoteParameters(f"unusable SDP offer: {exc}") from None
        except Exception as exc:
            # aiortc's OperationError: no codec in common with its constrained-baseline
            # list, although the profile matched above; report it the same way.
            raise CapabilityMismatch(f"no H.264 in common: {exc}") from None
        # Forward the camera's H.264 as negotiated above, not aiortc's encoder profile.
        transceiver._codecs = [codec]

        for ice in {t.sender.transport.transport for t in self._pc.getTransceivers()}:
            if not ice._connection._local_candidates_start:
                await gather_announced(ice._connection, self._settings)

        await self._pc.setLocalDescription(await self._pc.createAnswer())
        self._connect_deadline = asyncio.get_running_loop().call_later(
            self._settings.connect_timeout_s, self._connect_timed_out)
        return str(self._pc.localDescription.sdp)

    def _connect_timed_out(self) -> None:
        if self._pc.connectionState != "connected" and not self._closing:
            logger.info("WHEP session %s: not connected after %.0f s", self.id,
                        self._settings.connect_timeout_s)
            self._close_task = asyncio.ensure_future(self.close())

    def _add_sources(self, offer: SessionDescription) -> None:
        """A send-only section for each other kind the offer receives and a source has."""
        for source in self._sources:
            wanted = [m for m in offer.media if m.kind == source.kind
                      and m.direction in ("recvonly", "sendrecv")]
            track = source.subscribe() if wanted else None
            if track is None:
                continue
            self._extra_tracks.append(track)
            transceiver = self._pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences([
                c for c in RTCRtpSender.getCapabilities(source.kind).codecs
                if c.mimeType.lower() == source.mime_type])

    async def add_candidates(self, sdpfrag: str) -> None:
        """Apply a trickle-ice-sdpfrag (WHEP PATCH): candidates and end-of-candidates."""
        remote = self._pc.remoteDescription
        if remote is None:
            raise TransportStateError("no offer yet")
        offer = SessionDescription.parse(remote.sdp)
        ufrag = next((m.ice.usernameFragment for m in offer.media if m.ice), None)
        mid = next((t.mid for t in self._pc.getTransceivers() if t.kind == "video"), None)
        for raw in sdpfrag.splitlines():
            line = raw.strip()
            if line.startswith("a=ice-ufrag:") and line[12:] != ufrag:
                raise InvalidRemoteParameters("ICE restarts are not supported")
            if line.startswith("a=mid:"):
                mid = line[6:]
            elif line.startswith("a=candidate:") and not is_mdns_candidate(line):
                try:
                    candidate = candidate_from_sdp(line[12:])
                except (AssertionError, ValueError, IndexError) as exc:
                    raise InvalidRemoteParameters(f"unparsable candidate: {exc}") from None
                candidate.sdpMid = mid
                await self._pc.addIceCandidate(candidate)
            elif line == "a=end-of-candidates":
                await self._pc.addIceCandidate(None)

    async def _on_state(self) -> None:
        if self._pc.connectionState in ("failed", "closed") and not self._closing:
            logger.info("WHEP session %s: %s", self.id, self._pc.connectionState)
            self._close_task = asyncio.ensure_future(self.close())

    async def close(self) -> None:
        """End the session: stop sending, close the peer connection, call `on_close`."""
        if self._closing:
            return
        self._closing = True
        if self._connect_deadline is not None:
            self._connect_deadline.cancel()
        try:
            await self._pc.close()
        finally:
            if self._track is not None:
                self._track.stop()
            for track in self._extra_tracks:
                track.stop()
            if self.on_close is not None:
                try:
                    self.on_close(self)
                except Exception:
                    logger.exception("on_close callback of WHEP session %s failed", self.id)
