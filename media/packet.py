"""MediaPacket: an immutable compressed packet, safe to share between threads and tasks.

``av.Packet`` wraps a mutable FFmpeg buffer owned by one container; handing the same
object to several consumers (recorder thread, WebRTC tasks, GOP cache) would race on
its timestamps and data. Everything in ``media`` passes ``MediaPacket`` instead and
makes an ``av.Packet`` only at the edge where PyAV needs one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Protocol

import av
from av.stream import Stream

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaPacket:
    """One compressed video access unit with its timing and codec.

    ``pts``/``dts`` are in ``time_base`` units; ``wallclock`` is the Unix time (seconds)
    at which the packet arrived from the source. ``discontinuity`` marks the first packet
    of a new source connection: what came before may not continue into it (a muxer
    starts a new segment, a decoder may see new parameter sets).
    """

    data: bytes
    pts: int
    dts: int | None
    time_base: Fraction
    is_keyframe: bool
    wallclock: float
    discontinuity: bool = False
    #: FFmpeg's name of the video codec: "h264" or "hevc" (see media.rtsp_source).
    codec: str = "h264"

    @classmethod
    def from_av(
        cls, packet: av.Packet[Any], wallclock: float, data: bytes | None = None
    ) -> MediaPacket:
        """Copy an ``av.Packet``; ``data`` replaces its payload (e.g. with SPS/PPS added).

        Raises ValueError for packets without pts or time base: they cannot be placed
        on a timeline (RTSP demuxing yields such packets before the first RTCP sync).
        """
        if packet.pts is None or packet.time_base is None:
            raise ValueError("packet has no pts or time base")
        return cls(
            data=bytes(packet) if data is None else data,
            pts=packet.pts,
            dts=packet.dts,
            time_base=packet.time_base,
            is_keyframe=packet.is_keyframe,
            wallclock=wallclock,
        )

    def to_av(self) -> av.Packet[Stream]:
        """A new ``av.Packet`` with this payload and timing (not bound to a stream)."""
        packet = av.Packet(self.data)
        packet.pts = self.pts
        packet.dts = self.dts
        packet.time_base = self.time_base
        packet.is_keyframe = self.is_keyframe
        return packet

    @property
    def size(self) -> int:
        """Payload size in bytes."""
        return len(self.data)

    @property
    def decode_ts(self) -> int:
        """dts when known, else pts: the order packets must be fed to a decoder or muxer."""
        return self.pts if self.dts is None else self.dts

    @property
    def pts_seconds(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)

    def shifted(self, offset: int) -> MediaPacket:
        """The same packet with ``offset`` (in ``time_base`` units) added to pts and dts."""
        dts = None if self.dts is None else self.dts + offset
        return replace(self, pts=self.pts + offset, dts=dts)


class PacketSink(Protocol):
    """Receives every packet of an ingest (``RtspIngest.add_sink``).

    ``on_packet`` is called on the ingest thread, in decode order. It must return quickly
    and be thread-safe: a slow sink delays every other sink and the demuxer itself. Sinks
    with real work (files, network) hand the packet off, e.g. to a bounded queue or with
    ``loop.call_soon_threadsafe``.
    """

    def on_packet(self, packet: MediaPacket) -> None:
        """Take one packet (on the ingest thread; must not block)."""
