"""The send path of a consumer of already-encoded packets other than the stream's video:
aiortc's own `RTCRtpSender`, told when the viewer's RTCP arrives.

The stream's Opus audio (`media.audio_fanout`) comes as one encoded packet per 20 ms frame;
aiortc's Opus "encoder" only packetizes a packet it is given (one RTP payload, its
timestamp), so its sender is already the whole path. Unlike the video's `LeanSender`, it
runs one task per viewer and builds an `RtpPacket` per packet: at 50 small packets a
second that costs little next to the video, and it is the sender WHEP's audio uses too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiortc import RTCDtlsTransport, RTCRtpSender
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import AnyRtcpPacket

logger = logging.getLogger(__name__)


class RelaySender(RTCRtpSender):
    """aiortc's sender for `track`; `on_rtcp` is called for each RTCP packet of the viewer
    (proof that it is alive, for the transport's silence watchdog)."""

    def __init__(self, track: MediaStreamTrack, transport: RTCDtlsTransport,
                 on_rtcp: Callable[[], None] | None = None) -> None:
        super().__init__(track, transport)
        self._on_rtcp = on_rtcp

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if self._on_rtcp is not None:
            self._on_rtcp()
        await super()._handle_rtcp_packet(packet)
