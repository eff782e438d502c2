"""Helpers for the media tests; test modules import them explicitly.

H.264 samples come from a real encoder (PyAV's libx264), cameras from
``tests.camera.TestCamera`` (GStreamer's RTSP server).
"""

from __future__ import annotations

import dataclasses
import io
from fractions import Fraction

import av
import av.codec.context

from media.bitreader import BitReader
from media.h264 import NAL_SPS, nal_type, split_annexb, unescape_rbsp
from tests.camera import CameraProfile

# A 1 s GOP, small and cheap for the 2-core test machine.
CAMERA_PROFILE = CameraProfile(width=640, height=360, fps=15, gop=15, bitrate_kbps=600)


@dataclasses.dataclass(frozen=True)
class Encoded:
    """Output of :func:`encode_h264`: Annex B packets and the encoder's extradata."""

    packets: list[bytes]
    keyframes: list[bool]
    extradata: bytes


def encode_h264(
    profile: str,
    width: int,
    height: int,
    *,
    pix_fmt: str = "yuv420p",
    frames: int = 3,
    level: str = "3.1",
    x264_params: str | None = None,
    global_header: bool = False,
    gop: int | None = None,
) -> Encoded:
    """Encode grey frames with libx264 and return the packets."""
    context = av.CodecContext.create("libx264", "w")
    assert isinstance(context, av.VideoCodecContext)
    context.width, context.height, context.pix_fmt = width, height, pix_fmt
    context.time_base = Fraction(1, 25)
    context.framerate = Fraction(25)
    # veryfast, not ultrafast: ultrafast turns CABAC off and x264 then writes Baseline.
    options = {"profile": profile, "preset": "veryfast", "level": level}
    if x264_params:
        options["x264-params"] = x264_params
    if gop:
        options["g"] = str(gop)
    context.options = options
    if global_header:
        context.flags |= av.codec.context.Flags.global_header
    packets = []
    for index in range(frames):
        frame = av.VideoFrame(width, height, pix_fmt)
        for plane in frame.planes:
            plane.update(bytes([index * 7 % 256]) * plane.buffer_size)
        frame.pts = index
        packets += context.encode(frame)
    packets += context.encode(None)
    return Encoded(
        packets=[bytes(packet) for packet in packets],
        keyframes=[packet.is_keyframe for packet in packets],
        extradata=bytes(context.extradata or b""),
    )


def decode_sizes(packets: list[bytes], extradata: bytes = b"") -> list[tuple[int, int]]:
    """Decode Annex B packets with FFmpeg's h264 decoder; the size of every frame."""
    decoder = av.CodecContext.create("h264", "r")
    if extradata:
        decoder.extradata = extradata
    frames = []
    for data in packets:
        frames += decoder.decode(av.Packet(data))
    frames += decoder.decode(None)
    return [(frame.width, frame.height) for frame in frames]


def avcc_extradata(encoded: Encoded) -> bytes:
    """The avcC record FFmpeg's MP4 muxer builds from the packets' in-band SPS/PPS."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_mux_stream("h264", width=64, height=64)
        stream.time_base = Fraction(1, 25)
        for index, data in enumerate(encoded.packets):
            packet = av.Packet(data)
            packet.pts = packet.dts = index
            packet.time_base = Fraction(1, 25)
            packet.is_keyframe = encoded.keyframes[index]
            packet.stream = stream
            output.mux(packet)
    buffer.seek(0)
    with av.open(buffer, "r", format="mp4") as mp4:
        return bytes(mp4.streams.video[0].codec_context.extradata or b"")


class BitWriter:
    """MSB-first bit writer with exp-Golomb codes (the inverse of BitReader)."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def write_bits(self, value: int, count: int) -> None:
        self.bits += [(value >> (count - 1 - i)) & 1 for i in range(count)]

    def write_ue(self, value: int) -> None:
        code = value + 1
        self.write_bits(0, code.bit_length() - 1)
        self.write_bits(code, code.bit_length())

    def write_se(self, value: int) -> None:
        self.write_ue(2 * value - 1 if value > 0 else -2 * value)


def add_emulation_prevention(rbsp: bytes) -> bytes:
    """Insert 0x03 after every 00 00 that precedes a byte <= 3 (H.264 § 7.4.1)."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def with_scaling_lists(sps: bytes) -> bytes:
    """A High-profile SPS rewritten to carry seq_scaling_matrix_present_flag = 1.

    Splices, at the flag's position, eight scaling lists: two explicit 4x4 lists, one
    that ends early (delta making nextScale 0: "use the default"), the rest absent.
    """
    rbsp = unescape_rbsp(sps[1:])
    reader = BitReader(rbsp)
    reader.read_bits(24)
    reader.read_ue()  # sps id
    assert reader.read_ue() == 1  # chroma_format_idc 4:2:0: eight lists
    reader.read_ue()
    reader.read_ue()
    reader.read_flag()
    flag_at = reader.position
    assert reader.read_bits(1) == 0  # x264 writes its matrices in the PPS, never here
    bits = [(rbsp[i >> 3] >> (7 - (i & 7))) & 1 for i in range(len(rbsp) * 8)]
    # Drop the old rbsp_trailing_bits (last 1 bit and the zeros after it).
    last_one = max(i for i, bit in enumerate(bits) if bit)
    head, tail = bits[:flag_at], bits[flag_at + 1 : last_one]
    writer = BitWriter()
    writer.bits = head
    writer.write_bits(1, 1)  # seq_scaling_matrix_present_flag
    for index in range(8):
        present = index in (0, 1, 3)
        writer.write_bits(int(present), 1)
        if not present:
            continue
        if index == 3:
            writer.write_se(-8)  # nextScale = (8 - 8) % 256 = 0: stop, use the default list
            continue
        for _ in range(16):
            writer.write_se(1)  # 9, 10, 11, ...: every entry read
    writer.bits += tail
    writer.write_bits(1, 1)  # rbsp_stop_one_bit
    while len(writer.bits) % 8:
        writer.bits.append(0)
    data = bytes(
        int("".join(map(str, writer.bits[i : i + 8])), 2) for i in range(0, len(writer.bits), 8)
    )
    return sps[:1] + add_emulation_prevention(data)


def first_sps(packet: bytes) -> bytes:
    """The SPS NAL unit of an access unit."""
    return next(nal for nal in split_annexb(packet) if nal_type(nal) == NAL_SPS)
