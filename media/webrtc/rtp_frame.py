"""One access unit (video) or frame (audio), packetized once per stream into RTP payloads.

The fan-out builds an `RtpFrame` once per packet of the stream and hands the same object
to every viewer; a viewer adds only its own RTP header (SSRC, sequence number, timestamp
offset, header extensions) in `media.webrtc.lean_sender`. H.264 is split into
FU-A/STAP-A payloads (RFC 6184) by aiortc's own packetizer functions, so what a viewer
receives is byte for byte what aiortc's `RTCRtpSender` sent before; any other codec (Opus
audio, for one) is one payload per frame.

aiortc's `H264Encoder._split_bitstream` and `_packetize` are private (aiortc is pinned to
the tested minor release in pyproject.toml; tests/media/webrtc/test_fanout.py checks the
payloads against aiortc's public `H264Encoder.pack`).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from aiortc.codecs.h264 import H264Encoder

VIDEO_CLOCK_RATE = 90000
AUDIO_CLOCK_RATE = 48000

Packetizer = Callable[[bytes], list[bytes]]


def packetize_h264(data: bytes) -> list[bytes]:
    """RTP payloads (packetization-mode 1) of one Annex B access unit.

    Empty NAL units (a start code at the very end) are skipped: aiortc's packetizer fails
    on them.
    """
    return H264Encoder._packetize(n for n in H264Encoder._split_bitstream(data) if n)


def packetize_whole(data: bytes) -> list[bytes]:
    """One payload per frame: audio codecs such as Opus."""
    return [data]


def packetizer_for(mime_type: str) -> Packetizer:
    """The packetizer of a codec ("video/H264", "audio/opus", …)."""
    return packetize_h264 if mime_type.lower() == "video/h264" else packetize_whole


def to_clock(pts: int, time_base: Fraction, clock_rate: int) -> int:
    """`pts` in `time_base` units, converted to an RTP clock."""
    if time_base.numerator == 1 and time_base.denominator == clock_rate:
        return pts
    return round(pts * time_base * clock_rate)


class RtpFrame:
    """RTP payloads of one frame, its timestamp on the RTP clock and whether it is a key.

    `marker`: whether the last payload carries the RTP marker bit (the end of a video
    access unit; audio frames do not set it). Immutable by convention: it is shared by
    every viewer whose timeline is the source's; `retimed()` copies it for the others.
    """

    __slots__ = ("data", "is_keyframe", "marker", "payloads", "pts")

    def __init__(
        self, data: bytes, payloads: list[bytes], pts: int, is_keyframe: bool, marker: bool
    ) -> None:
        self.data = data
        self.payloads = payloads
        self.pts = pts
        self.is_keyframe = is_keyframe
        self.marker = marker

    def retimed(self, pts: int) -> RtpFrame:
        """The same payloads at another timestamp."""
        return RtpFrame(self.data, self.payloads, pts, self.is_keyframe, self.marker)

    def __bytes__(self) -> bytes:
        return self.data

    def __repr__(self) -> str:
        return f"RtpFrame(pts={self.pts}, key={self.is_keyframe}, payloads={len(self.payloads)})"
