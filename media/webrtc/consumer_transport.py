"""One mediasoup-style WebRTC consumer: ICE-lite, DTLS server, one RTP sender.

Built from aiortc's ORTC objects, the way a mediasoup WebRtcTransport with one Consumer
looks to mediasoup-client: `RTCIceGatherer` (on an ICE-lite connection) → `RTCIceTransport`
→ `RTCDtlsTransport` → for the video, `LeanSender` (per viewer: RTP header, SRTP, sendto)
fed by a `PacketTrack`; for another kind (the stream's Opus audio), aiortc's own sender
(`RelaySender`) fed by that kind's track. `parameters()` is what the
`consume` answer carries; `connect()` takes the browser's DTLS parameters and returns at
once, because mediasoup-client waits for that answer before it applies its own SDP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from aiortc import (
    RTCCertificate,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
    RTCRtpSender,
)
from aiortc.mediastreams import MediaStreamTrack

from media.webrtc.errors import TransportStateError
from media.webrtc.ice_lite import IceLiteConnection
from media.webrtc.lean_sender import LeanSender
from media.webrtc.ortc import (
    LiteIceGatherer,
    parse_candidate,
    remote_dtls_parameters,
    send_parameters,
    shared_certificate,
)
from media.webrtc.packet_track import PacketTrack
from media.webrtc.relay_sender import RelaySender
from media.webrtc.settings import WebRtcSettings

logger = logging.getLogger(__name__)


class ConsumerTransport:
    """A WebRTC transport carrying one stream to one viewer; build with `create()`.

    State: "new" → "connecting" (after `connect`) → "connected" (DTLS up, RTP flowing)
    → "closed"; or "failed" when ICE/DTLS did not complete. The transport owns `track`
    and stops it when it closes; its `kind` is the track's ("video": a `PacketTrack`, sent
    by `LeanSender`; else aiortc's sender). `on_close` is called once, whatever closed
    it: `close()`, the viewer's DTLS close, a failed handshake or the silence watchdog.
    """

    def __init__(
        self,
        *,
        settings: WebRtcSettings,
        track: MediaStreamTrack,
        rtp_parameters: Mapping[str, Any],
        connection: IceLiteConnection,
        gatherer: RTCIceGatherer,
        certificate: RTCCertificate,
        transport_id: str,
        on_close: Callable[[ConsumerTransport], None] | None,
    ) -> None:
        self.id = transport_id
        self.track = track
        self.rtp_parameters = rtp_parameters
        self.ssrc: int = rtp_parameters["encodings"][0]["ssrc"]
        self.on_close = on_close
        self.created_at = time.time()
        self._settings = settings
        self._certificate = certificate
        self._connection = connection
        self._ice = RTCIceTransport(gatherer)
        self._dtls = RTCDtlsTransport(self._ice, [certificate])
        self._sender: RTCRtpSender = (
            LeanSender(track, self._dtls, self._touch) if isinstance(track, PacketTrack)
            else RelaySender(track, self._dtls, self._touch))
        # send() ignores encodings[].ssrc: the advertised SSRC must be set beforehand.
        self._sender._ssrc = self.ssrc
        self._state = "new"
        self._last_rtcp_at: float | None = None
        self._created_mono = time.monotonic()
        self._establish_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._connected = asyncio.Event()
        self._dtls.on("statechange", self._on_dtls_state)
        self._watchdog = asyncio.ensure_future(self._watch())

    @classmethod
    async def create(
        cls,
        *,
        settings: WebRtcSettings,
        track: MediaStreamTrack,
        rtp_parameters: Mapping[str, Any],
        certificate: RTCCertificate | None = None,
        transport_id: str | None = None,
        on_close: Callable[[ConsumerTransport], None] | None = None,
    ) -> ConsumerTransport:
        """Bind the transport's socket(s) and build it; `rtp_parameters` from capabilities."""
        connection = IceLiteConnection(settings)
        gatherer = LiteIceGatherer(connection)
        try:
            await gatherer.gather()
        except BaseException:
            await connection.close()
            track.stop()
            raise
        return cls(
            settings=settings,
            track=track,
            rtp_parameters=rtp_parameters,
            connection=connection,
            gatherer=gatherer,
            certificate=certificate or shared_certificate(),
            transport_id=transport_id or f"transport-{uuid.uuid4()}",
            on_close=on_close,
        )

    # what the consume answer carries

    def parameters(self) -> dict[str, Any]:
        """`id`, `ice_parameters`, `ice_candidates` and `dtls_parameters` for the client."""
        conn = self._connection
        sha256 = next(fp for fp in self._certificate.getFingerprints() if fp.algorithm == "sha-256")
        return {
            "id": self.id,
            "ice_parameters": {
                "usernameFragment": conn.local_username,
                "password": conn.local_password,
                "iceLite": True,
            },
            "ice_candidates": [
                {
                    "foundation": c.foundation,
                    "priority": c.priority,
                    "ip": c.host,
                    "address": c.host,
                    "port": c.port,
                    "type": c.type,
                    "protocol": c.transport,
                }
                for c in conn.local_candidates
            ],
            # Only sha-256: mediasoup-client puts the *last* fingerprint in its SDP.
            "dtls_parameters": {
                "role": "auto",
                "fingerprints": [{"algorithm": sha256.algorithm, "value": sha256.value}],
            },
        }

    # state

    @property
    def kind(self) -> str:
        """What the transport carries: "video" or "audio"."""
        return str(self.track.kind)

    @property
    def state(self) -> str:
        """One of "new", "connecting", "connected", "closed" or "failed"."""
        return self._state

    @property
    def last_seen_at(self) -> float:
        """Wall-clock time of the viewer's last ICE check or RTCP (creation time before)."""
        return time.time() - (time.monotonic() - self._last_seen_mono())

    def _last_seen_mono(self) -> float:
        return max(
            self._created_mono,
            self._connection.last_check_at or 0.0,
            self._last_rtcp_at or 0.0,
        )

    def _touch(self) -> None:
        self._last_rtcp_at = time.monotonic()

    async def wait_connected(self) -> bool:
        """Wait until media flows (True) or the transport closes first (False).

        Bound it with `asyncio.timeout()`; the transport's own timeouts end it anyway.
        """
        closed = asyncio.ensure_future(self._closed.wait())
        connected = asyncio.ensure_future(self._connected.wait())
        try:
            await asyncio.wait({closed, connected}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            connected.cancel()
        return self._state == "connected"

    # signalling

    def connect(self, dtls_parameters: Mapping[str, Any]) -> None:
        """Start ICE, DTLS and RTP in the background and return at once.

        Raises InvalidRemoteParameters for unusable parameters and TransportStateError
        when called twice or after close.
        """
        remote, local_role = remote_dtls_parameters(dtls_parameters)
        if self._state != "new":
            raise TransportStateError(f"transport {self.id} is {self._state}, not new")
        self._state = "connecting"
        self._establish_task = asyncio.ensure_future(self._establish(remote, local_role))

    async def add_remote_candidate(self, candidate: Mapping[str, Any] | str | None) -> None:
        """Accept a trickled candidate (`{"candidate": "candidate:..."}` or the string).

        An ICE-lite server learns the viewer's address from its checks, so the candidate
        is only validated, as mediasoup acknowledges and ignores them too.
        """
        parsed = parse_candidate(candidate)
        if parsed is not None:
            await self._connection.add_remote_candidate(parsed)

    async def _establish(self, remote: RTCDtlsParameters, local_role: str) -> None:
        try:
            async with asyncio.timeout(self._settings.connect_timeout_s):
                # The lite side never needs the viewer's ICE credentials.
                await self._ice.start(RTCIceParameters())
                if self._ice.state != "completed":
                    raise ConnectionError(f"ICE {self._ice.state}")
                # aiortc's ORTC "auto" would pick client when controlled; mediasoup is
                # the DTLS server for a viewer whose role is "auto" or "client".
                self._dtls._set_role(local_role)
                await self._dtls.start(remote)
                if self._dtls.state != "connected":
                    raise ConnectionError(f"DTLS {self._dtls.state}")
                await self._sender.send(send_parameters(self.rtp_parameters, self.ssrc))
        except (TimeoutError, ConnectionError) as exc:
            logger.info("consumer transport %s failed: %s", self.id, exc or "timeout")
            self._fail()
            return
        except Exception:
            logger.exception("consumer transport %s failed", self.id)
            self._fail()
            return
        if self._state == "connecting":
            self._state = "connected"
            self._connected.set()
            logger.info("consumer transport %s connected", self.id)

    def _fail(self) -> None:
        if not self._closing:
            self._state = "failed"
            self._schedule_close()

    def _on_dtls_state(self) -> None:
        # The viewer closed DTLS, or its loss of the connection surfaced there.
        if self._dtls.state in ("closed", "failed") and self._state == "connected":
            logger.info("consumer transport %s: DTLS %s", self.id, self._dtls.state)
            self._schedule_close()

    def _schedule_close(self) -> None:
        if self._close_task is None and not self._closing:
            self._close_task = asyncio.ensure_future(self.close())

    async def _watch(self) -> None:
        timeout = self._settings.silence_timeout_s
        interval = min(1.0, timeout / 4)
        while not self._closing:
            await asyncio.sleep(interval)
            silence = time.monotonic() - self._last_seen_mono()
            if silence > timeout:
                logger.info("consumer transport %s silent for %.1f s, closing", self.id, silence)
                self._schedule_close()
                return

    # teardown

    async def close(self) -> None:
        """Stop RTP, DTLS and ICE, release the port and call `on_close`; idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        if self._state != "failed":
            self._state = "closed"
        current = asyncio.current_task()
        for task in (self._establish_task, self._watchdog):
            if task is not None and task is not current and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            await self._sender.stop()
            await self._dtls.stop()
            await self._ice.stop()
        except Exception:
            logger.exception("consumer transport %s: error while closing", self.id)
        finally:
            self.track.stop()
            self._closed.set()
            logger.debug("consumer transport %s closed", self.id)
            if self.on_close is not None:
                try:
                    self.on_close(self)
                except Exception:
                    logger.exception("on_close callback of %s failed", self.id)
