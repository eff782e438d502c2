"""Camera audio: what an ingest's audio track is, and how recordings carry it.

Recordings keep the camera's audio (docs/codecs.md): AAC passes through, as ADTS frames
(MPEG-TS's own way of carrying AAC, which needs no out-of-band config, and which the MP4
muxer turns back into raw AAC for bookmarks); G.711 (PCMA, PCMU) and Opus are encoded to
AAC for the recording, because FFmpeg's MPEG-TS muxer writes them as private data that no
demuxer or player reads back, and MP4 does not take G.711 at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.stream import AudioStream

from media.packet import MediaPacket

logger = logging.getLogger(__name__)

# The audio codecs a camera may send (FFmpeg's names), in order of preference.
AUDIO_CODECS = ("aac", "opus", "pcm_alaw", "pcm_mulaw")

# ADTS sampling frequency index (ISO/IEC 14496-3, table 1.18).
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025,
              8000, 7350)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """The camera's audio track as learned at open."""

    codec: str
    sample_rate: int
    channels: int
    extradata: bytes
    time_base: Fraction


def select_audio_stream(streams: list[AudioStream]) -> AudioStream | None:
    """The first audio stream of a codec VAS takes (AAC first), or None."""
    for codec in AUDIO_CODECS:
        for stream in streams:
            if stream.codec_context.name == codec and stream.time_base is not None:
                return stream
    return None


def describe_audio(stream: AudioStream) -> AudioInfo:
    """AudioInfo of a selected stream."""
    context = stream.codec_context
    assert stream.time_base is not None
    return AudioInfo(
        codec=context.name,
        sample_rate=context.sample_rate or 8000,
        channels=context.channels or 1,
        extradata=bytes(context.extradata or b""),
        time_base=stream.time_base,
    )


# The names the API uses (RTP's encoding names).
AUDIO_NAMES = {"aac": "AAC", "opus": "OPUS", "pcm_alaw": "PCMA", "pcm_mulaw": "PCMU"}


def audio_config(info: AudioInfo) -> dict[str, object]:
    """`codec_config.audio` of a stream whose camera sends audio (docs/codecs.md)."""
    return {"codec": AUDIO_NAMES.get(info.codec, info.codec.upper()),
            "sample_rate": info.sample_rate, "channels": info.channels,
            "recording": {"codec": "AAC", "transcoded": info.codec != "aac"},
            "webrtc": {"codec": "OPUS", "clock_rate": 48000, "channels": 2,
                       "transcoded": True}}


def adts_header(config: bytes, payload_size: int) -> bytes:
    """The 7-byte ADTS header for one raw AAC frame, from its AudioSpecificConfig."""
    if len(config) < 2:
        raise ValueError("AAC config too short")
    object_type = config[0] >> 3
    rate_index = ((config[0] & 0x07) << 1) | (config[1] >> 7)
    channels = (config[1] >> 3) & 0x0F
    length = payload_size + 7
    profile = max(object_type - 1, 0) & 0x03
    return bytes([
        0xFF, 0xF1,
        (profile << 6) | (rate_index << 2) | (channels >> 2),
        ((channels & 0x03) << 6) | (length >> 11),
        (length >> 3) & 0xFF,
        ((length & 0x07) << 5) | 0x1F,
        0xFC,
    ])


def aac_config(sample_rate: int, channels: int) -> bytes:
    """An AAC-LC AudioSpecificConfig for the rate and channel count."""
    index = _AAC_RATES.index(sample_rate)
    return bytes([(2 << 3) | (index >> 1), ((index & 1) << 7) | (channels << 3)])


class RecordingAudio:
    """Turns a camera's audio packets into ADTS AAC packets for MPEG-TS (one per stream).

    Blocking (an encoder for G.711/Opus): call on the recorder's thread.
    """

    def __init__(self, info: AudioInfo) -> None:
        self.info = info
        self.passthrough = info.codec == "aac" and len(info.extradata) >= 2
        self._decoder: AudioCodecContext | None = None
        self._encoder: AudioCodecContext | None = None
        self.sample_rate = info.sample_rate
        self._next_pts: int | None = None  # of the next encoded frame, in 1/sample_rate
        if not self.passthrough:
            self.sample_rate = info.sample_rate if info.sample_rate in _AAC_RATES else 48000
            decoder = cast(AudioCodecContext, av.CodecContext.create(info.codec, "r"))
            decoder.sample_rate = info.sample_rate
            decoder.layout = "stereo" if info.channels == 2 else "mono"
            if info.extradata:
                decoder.extradata = info.extradata
            encoder = av.CodecContext.create("aac", "w")
            encoder.sample_rate = self.sample_rate
            encoder.layout = "mono"
            encoder.format = "fltp"
            encoder.bit_rate = 32000
            encoder.time_base = Fraction(1, self.sample_rate)
            encoder.open()
            self._decoder, self._encoder = decoder, encoder

    @property
    def time_base(self) -> Fraction:
        """Time base of the packets :meth:`convert` returns."""
        return self.info.time_base if self.passthrough else Fraction(1, self.sample_rate)

    def convert(self, packet: MediaPacket) -> list[MediaPacket]:
        """ADTS AAC packets for ``packet`` (none while an encoder fills its first frame)."""
        if self.passthrough:
            header = adts_header(self.info.extradata, len(packet.data))
            return [_with(packet, header + packet.data, packet.pts, packet.time_base)]
        assert self._decoder is not None and self._encoder is not None
        out: list[MediaPacket] = []
        try:
            frames = self._decoder.decode(packet.to_av())
        except av.error.FFmpegError:
            logger.debug("undecodable %s audio packet", self.info.codec)
            return out
        start = round(packet.pts * packet.time_base * self.sample_rate)
        config = aac_config(self.sample_rate, 1)
        for frame in frames:
            frame.pts = None  # timestamps are kept here (_next_pts), not by the encoder
            for encoded in self._encoder.encode(frame):
                data = bytes(cast(Any, encoded))
                if self._next_pts is None or abs(start - self._next_pts) > self.sample_rate:
                    self._next_pts = start  # the first frame, or after a jump in time
                pts, self._next_pts = self._next_pts, self._next_pts + encoded_samples(encoded)
                out.append(_with(packet, adts_header(config, len(data)) + data, pts,
                                 Fraction(1, self.sample_rate)))
        return out


def encoded_samples(packet: av.Packet[Any]) -> int:
    """Samples in one encoded AAC frame."""
    return int(packet.duration or 1024)


def _with(packet: MediaPacket, data: bytes, pts: int, time_base: Fraction) -> MediaPacket:
    return MediaPacket(data=data, pts=pts, dts=pts, time_base=time_base, is_keyframe=True,
                       wallclock=packet.wallclock, codec="aac")
