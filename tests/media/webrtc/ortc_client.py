"""A browser-like viewer built from aiortc's ORTC objects, and what its Device would send.

It does what Chromium does for a mediasoup-client recv transport: full ICE as the
controlling agent against the ICE-lite server, DTLS client, an RTP receiver that decodes
H.264 (or Opus, for an audio consumer). It binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiortc import (
    RTCCertificate,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceCandidate,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCDtlsFingerprint
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtcpParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
)
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from media.webrtc.gathering import gather_announced
from media.webrtc.settings import WebRtcSettings
from tests.media.webrtc.clip import read_index

SERVER_PORTS = (47000, 47999)
CLIENT_PORTS = (48000, 48999)
CLIENT_SETTINGS = WebRtcSettings(
    announced_ips=("127.0.0.1",), port_min=CLIENT_PORTS[0], port_max=CLIENT_PORTS[1]
)


# --- what mediasoup-client's Device would send -------------------------------------------


def chrome_like_caps(router_caps: dict[str, Any]) -> dict[str, Any]:
    """`device.rtpCapabilities` of a Chromium that loaded `router_caps`: its H.264 entry
    carries the router's payload type and ids, with Chromium's own parameters."""
    codec = router_caps["codecs"][0]
    opus = [
        {
            "mimeType": "audio/opus",
            "kind": "audio",
            "preferredPayloadType": c["preferredPayloadType"],
            "clockRate": 48000,
            "channels": 2,
            "parameters": {"minptime": 10, "useinbandfec": 1},
            "rtcpFeedback": [{"type": "transport-cc", "parameter": ""},
                             {"type": "nack", "parameter": ""}],
        }
        for c in router_caps["codecs"] if c["mimeType"] == "audio/opus"
    ]
    return {
        "codecs": [
            {
                "mimeType": "video/H264",
                "kind": "video",
                "preferredPayloadType": codec["preferredPayloadType"],
                "clockRate": 90000,
                "parameters": {
                    "level-asymmetry-allowed": 1,
                    "packetization-mode": 1,
                    "profile-level-id": "42e01f",
                },
                "rtcpFeedback": [
                    {"type": "goog-remb", "parameter": ""},
                    {"type": "transport-cc", "parameter": ""},
                    {"type": "ccm", "parameter": "fir"},
                    {"type": "nack", "parameter": ""},
                    {"type": "nack", "parameter": "pli"},
                ],
            },
            *opus,
        ],
        "headerExtensions": [
            {
                "kind": ext["kind"],
                "uri": ext["uri"],
                "preferredId": ext["preferredId"],
                "preferredEncrypt": False,
                "direction": "sendrecv",
            }
            for ext in router_caps["headerExtensions"]
        ],
    }


# --- a browser-like client from aiortc's ORTC objects ------------------------------------


@dataclass
class ReceivedFrame:
    at: float  # monotonic
    index: int
    width: int


@dataclass
class OrtcClient:
    """What a browser does for a mediasoup-client recv transport: full ICE, controlling,
    against an ICE-lite server; DTLS client; an RTP receiver that decodes H.264."""

    frames: list[ReceivedFrame] = field(default_factory=list)
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)
    decode_frames: bool = True
    #: An audio consumer's decoded samples (first channel, int16, 48 kHz).
    samples: list[np.ndarray] = field(default_factory=list)

    async def start(
        self,
        transport_params: dict[str, Any],
        rtp_parameters: dict[str, Any],
        connect: Callable[[dict[str, Any]], None],
        *,
        tamper_fingerprint: bool = False,
    ) -> None:
        gatherer = RTCIceGatherer(iceServers=[])
        await gather_announced(gatherer._connection, CLIENT_SETTINGS)
        gatherer._connection.ice_controlling = True
        self.ice = RTCIceTransport(gatherer)
        for c in transport_params["ice_candidates"]:
            await self.ice.addRemoteCandidate(
                RTCIceCandidate(
                    component=1,
                    foundation=c["foundation"],
                    ip=c.get("address") or c["ip"],
                    port=c["port"],
                    priority=c["priority"],
                    protocol=c["protocol"],
                    type=c["type"],
                )
            )
        await self.ice.addRemoteCandidate(None)

        certificate = RTCCertificate.generateCertificate()
        self.dtls = RTCDtlsTransport(self.ice, [certificate])
        codec = rtp_parameters["codecs"][0]
        kind = codec["mimeType"].split("/")[0]
        self.receiver = RTCRtpReceiver(kind, self.dtls)
        self.receiver._track = RemoteStreamTrack(kind=kind)
        self.receiver._set_rtcp_ssrc(123456789)
        await self.receiver.receive(
            RTCRtpReceiveParameters(
                codecs=[
                    RTCRtpCodecParameters(
                        mimeType=codec["mimeType"],
                        clockRate=codec["clockRate"],
                        channels=codec.get("channels"),
                        payloadType=codec["payloadType"],
                        rtcpFeedback=[
                            RTCRtcpFeedback(type=f["type"], parameter=f.get("parameter") or None)
                            for f in codec["rtcpFeedback"]
                        ],
                        parameters=codec["parameters"],
                    )
                ],
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(id=e["id"], uri=e["uri"])
                    for e in rtp_parameters["headerExtensions"]
                ],
                muxId=rtp_parameters["mid"],
                rtcp=RTCRtcpParameters(cname=rtp_parameters["rtcp"]["cname"], mux=True),
                encodings=[
                    RTCRtpDecodingParameters(
                        ssrc=rtp_parameters["encodings"][0]["ssrc"],
                        payloadType=codec["payloadType"],
                    )
                ],
            )
        )
        self._reader = asyncio.ensure_future(self._read())

        # mediasoup-client's "connect" event: the server answers at once...
        sha256 = next(f for f in certificate.getFingerprints() if f.algorithm == "sha-256")
        value = sha256.value
        if tamper_fingerprint:
            value = ("00" if value[:2] != "00" else "11") + value[2:]
        connect({"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": value}]})
        # ...then the browser runs ICE and DTLS (as client: the server's role is "auto").
        ice = transport_params["ice_parameters"]
        await self.ice.start(
            RTCIceParameters(
                usernameFragment=ice["usernameFragment"],
                password=ice["password"],
                iceLite=ice["iceLite"],
            )
        )
        assert self.ice.state == "completed"
        self.dtls._set_role("client")
        fingerprints = [
            RTCDtlsFingerprint(algorithm=f["algorithm"], value=f["value"])
            for f in transport_params["dtls_parameters"]["fingerprints"]
        ]
        await self.dtls.start(RTCDtlsParameters(fingerprints=fingerprints))
        assert self.dtls.state == "connected"

    async def _read(self) -> None:
        track = self.receiver.track
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.AudioFrame):
                data = frame.to_ndarray().reshape(-1)
                self.samples.append(data[:: len(frame.layout.channels)])
                self.first_frame.set()
                continue
            assert isinstance(frame, av.VideoFrame)
            self.frames.append(ReceivedFrame(time.monotonic(), read_index(frame), frame.width))
            self.first_frame.set()

    async def wait_frames(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.frames) < count:
                await asyncio.sleep(0.01)

    async def vanish(self) -> None:
        """Disappear without a goodbye: close the sockets, send no DTLS close_notify."""
        await self.ice.stop()
        await self.receiver.stop()
        self._reader.cancel()

    async def close(self) -> None:
        await self.receiver.stop()
        await self.dtls.stop()
        await self.ice.stop()
        self._reader.cancel()
