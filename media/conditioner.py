"""PacketConditioner: turns demuxed packets into a stream every sink can start from.

The camera's packets are not directly usable by late joiners or muxers: a connection
starts mid-GOP, keyframes may lack SPS/PPS (when the camera sends them only in the
SDP), and timestamps start over after a reconnect. This fixes all three in one place.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from fractions import Fraction

from media.h264 import ParameterSets, ensure_parameter_sets, parameter_sets_in, split_annexb
from media.packet import MediaPacket
from media.timeline import ContinuousTimeline

logger = logging.getLogger(__name__)


class PacketConditioner:
    """Drops packets before a connection's first keyframe, adds SPS/PPS, rebases time.

    Not thread-safe: one instance belongs to the one thread that demuxes.
    """

    def __init__(self) -> None:
        self.codec = "h264"
        self._hevc_headers = b""  # VPS/SPS/PPS of an H.265 source (its extradata, Annex B)
        self.parameter_sets = ParameterSets()
        self._timeline = ContinuousTimeline()
        self._restart = True
        self._frame_duration = Fraction(1, 30)
        self._held: tuple[bytes, float] | None = None

    def new_connection(self, parameter_sets: ParameterSets, fps: float | None = None,
                       codec: str = "h264", extradata: bytes = b"") -> None:
        """A new connection begins; ``parameter_sets`` (H.264) or ``extradata`` (H.265, Annex
        B) come from its SDP."""
        self.codec = codec
        if codec == "hevc" and extradata.startswith((b"\0\0\1", b"\0\0\0\1")):
            self._hevc_headers = extradata
        if parameter_sets.complete:
            self.parameter_sets = parameter_sets
        if fps:
            self._frame_duration = Fraction(1) / Fraction(fps).limit_denominator(1001)
        self._restart = True
        self._held = None

    def hold_untimed(self, data: bytes, is_keyframe: bool, wallclock: float) -> None:
        """Take a packet that has no timestamps.

        FFmpeg gives the first frame of an RTSP session no pts, and that frame is often
        the keyframe the camera starts a session with. Dropping it would make everyone
        wait a whole GOP, so a keyframe that opens the connection is kept until the next
        timed packet shows where it belongs (one frame earlier). Others are dropped.
        """
        if is_keyframe and self._restart:
            self._held = (data, wallclock)

    def condition(self, packet: MediaPacket) -> list[MediaPacket]:
        """The packets ready for sinks (none, this one, or a held keyframe and this one)."""
        ready: list[MediaPacket] = []
        if self._held is not None:
            data, wallclock = self._held
            self._held = None
            step = max(1, round(self._frame_duration / packet.time_base))
            dts = None if packet.dts is None else packet.dts - step
            held = MediaPacket(
                data, packet.decode_ts - step, dts, packet.time_base, True, wallclock
            )
            ready += self._condition_one(held)
        ready += self._condition_one(packet)
        return ready

    def _condition_one(self, packet: MediaPacket) -> list[MediaPacket]:
        if self.codec != "h264":
            # Every MJPEG frame is a picture of its own: a keyframe.
            keyframe = packet.is_keyframe or self.codec == "mjpeg"
            packet = replace(packet, codec=self.codec, is_keyframe=keyframe)
            if packet.is_keyframe:
                packet = self._with_hevc_headers(packet)
        elif packet.is_keyframe:
            packet = self._with_parameter_sets(packet)
        elif self._restart:
            return []  # joined mid-GOP: nothing is decodable before the next keyframe
        packet = self._timeline.rebase(packet, restart=self._restart)
        if self._restart:
            packet = replace(packet, discontinuity=True)
            self._restart = False
        return [packet]

    def _with_parameter_sets(self, packet: MediaPacket) -> MediaPacket:
        in_band = parameter_sets_in(split_annexb(packet.data))
        if in_band.complete and in_band != self.parameter_sets:
            # In-band sets win over the SDP's: they are what the camera encodes with now
            # (after a resolution change, or when its SDP is stale).
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("using the in-band SPS/PPS from now on")
            self.parameter_sets = in_band
        data = ensure_parameter_sets(packet.data, self.parameter_sets)
        if data is packet.data:
            return packet
        return replace(packet, data=data)

    def _with_hevc_headers(self, packet: MediaPacket) -> MediaPacket:
        """An H.265 keyframe with VPS/SPS/PPS in front (the SDP's when it has none)."""
        if not self._hevc_headers or _first_hevc_nal_type(packet.data) == HEVC_NAL_VPS:
            return packet
        return replace(packet, data=self._hevc_headers + packet.data)


HEVC_NAL_VPS = 32


def _first_hevc_nal_type(data: bytes) -> int | None:
    """The type of the first NAL unit of an Annex B access unit (H.265 header layout)."""
    start = data.find(b"\0\0\1", 0, 64)
    if start < 0 or start + 3 >= len(data):
        return None
    return (data[start + 3] >> 1) & 0x3F
