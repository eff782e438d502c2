"""media.h264 against real encoder output (PyAV's libx264) and FFmpeg's decoder."""

from __future__ import annotations

import pytest

from media.bitreader import BitReader, BitstreamError
from media.h264 import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    ParameterSets,
    ensure_parameter_sets,
    is_idr,
    is_pps,
    is_sps,
    nal_type,
    parameter_sets,
    parameter_sets_in,
    parse_sps,
    split_annexb,
    to_annexb,
    unescape_rbsp,
)
from tests.media.conftest_media import (
    avcc_extradata,
    decode_sizes,
    encode_h264,
    first_sps,
    with_scaling_lists,
)


@pytest.mark.parametrize(
    ("profile", "width", "height", "pix_fmt", "x264_params", "expected"),
    [
        ("baseline", 640, 360, "yuv420p", None, "42c01f"),
        ("main", 1280, 720, "yuv420p", None, "4d401f"),
        ("high", 1920, 1080, "yuv420p", None, "64001f"),
        ("high", 322, 242, "yuv420p", None, "64001f"),  # cropping on both axes
        ("high", 640, 360, "yuv420p", "interlaced=1", "64001f"),  # field coding
        ("high422", 640, 360, "yuv422p", None, "7a001f"),  # chroma_format_idc 2
        ("high444", 320, 240, "yuv444p", None, "f4001f"),  # chroma_format_idc 3
    ],
)
def test_sps_of_libx264_output(
    profile: str, width: int, height: int, pix_fmt: str, x264_params: str | None, expected: str
) -> None:
    encoded = encode_h264(profile, width, height, pix_fmt=pix_fmt, x264_params=x264_params)
    info = parse_sps(first_sps(encoded.packets[0]))
    assert info.profile_level_id == expected
    assert (info.width, info.height) == (width, height)
    assert info.frame_rate == pytest.approx(25.0)
    # FFmpeg agrees on the picture size.
    assert decode_sizes(encoded.packets)[0] == (width, height)


def test_sps_with_scaling_lists_parses_and_decodes() -> None:
    encoded = encode_h264("high", 1280, 720)
    sps = with_scaling_lists(first_sps(encoded.packets[0]))
    info = parse_sps(sps)
    assert (info.profile_level_id, info.width, info.height) == ("64001f", 1280, 720)
    # Proof the rewritten SPS is valid H.264: FFmpeg decodes the stream with it.
    nals = [sps if nal_type(nal) == NAL_SPS else nal for nal in split_annexb(encoded.packets[0])]
    patched = [to_annexb(nals), *encoded.packets[1:]]
    assert decode_sizes(patched) == [(1280, 720)] * len(encoded.packets)


def test_split_annexb_handles_3_and_4_byte_start_codes() -> None:
    data = b"\x00\x00\x00\x01\x67\xaa\x00\x00\x01\x68\xbb\x00\x00\x00\x00\x01\x65\xcc"
    assert split_annexb(data) == [b"\x67\xaa", b"\x68\xbb", b"\x65\xcc"]
    assert [is_sps(n) for n in split_annexb(data)] == [True, False, False]
    assert [is_pps(n) for n in split_annexb(data)] == [False, True, False]
    assert [is_idr(n) for n in split_annexb(data)] == [False, False, True]


def test_unescape_rbsp_removes_emulation_prevention() -> None:
    assert unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x05") == b"\x00\x00\x01\x00\x00\x00\x05"
    assert unescape_rbsp(b"\x12\x34") == b"\x12\x34"


def test_exp_golomb() -> None:
    # ue: 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3; se of 00101 (ue 4) -> -2
    reader = BitReader(bytes([0b10100110, 0b01000010, 0b10000000]))
    assert [reader.read_ue() for _ in range(4)] == [0, 1, 2, 3]
    assert reader.read_se() == -2
    with pytest.raises(BitstreamError):
        BitReader(b"\x00").read_ue()


def test_parameter_sets_from_annexb_extradata() -> None:
    encoded = encode_h264("main", 640, 480, global_header=True)
    assert encoded.extradata.startswith(b"\x00\x00\x00\x01")
    sets = parameter_sets(encoded.extradata)
    assert len(sets.sps) == 1 and len(sets.pps) == 1
    info = sets.sps_info()
    assert info is not None
    assert (info.profile_level_id, info.width, info.height) == ("4d401f", 640, 480)
    assert parameter_sets(b"") == ParameterSets()
    with pytest.raises(BitstreamError):
        parameter_sets(b"\x07garbage")


def test_parameter_sets_from_avcc_extradata() -> None:
    encoded = encode_h264("high", 640, 480)  # SPS/PPS in-band; the MP4 muxer builds avcC
    avcc = avcc_extradata(encoded)
    assert avcc[0] == 1  # configurationVersion: an AVCDecoderConfigurationRecord
    in_band = parameter_sets_in(split_annexb(encoded.packets[0]))
    assert in_band.complete
    assert parameter_sets(avcc) == in_band
    with pytest.raises(BitstreamError):
        parameter_sets(avcc[:12])  # truncated inside the SPS


def test_ensure_parameter_sets_makes_bare_idr_decodable() -> None:
    # With global headers the encoder keeps SPS/PPS out of the packets, like a camera
    # that sends them only in its SDP.
    encoded = encode_h264("high", 640, 360, global_header=True)
    idr = encoded.packets[0]
    assert NAL_IDR in [nal_type(n) for n in split_annexb(idr)]
    assert NAL_SPS not in [nal_type(n) for n in split_annexb(idr)]
    sets = parameter_sets(encoded.extradata)
    fixed = ensure_parameter_sets(idr, sets)
    types = [nal_type(n) for n in split_annexb(fixed)]
    assert types.index(NAL_SPS) < types.index(NAL_PPS) < types.index(NAL_IDR)
    # Decodable without any extradata now.
    assert decode_sizes([fixed, *encoded.packets[1:]])[0] == (640, 360)
    # Non-IDR packets and complete IDRs come back untouched (the same object).
    assert ensure_parameter_sets(encoded.packets[1], sets) is encoded.packets[1]
    assert ensure_parameter_sets(fixed, sets) is fixed
    assert ensure_parameter_sets(idr, ParameterSets()) is idr


def test_ensure_parameter_sets_keeps_aud_first_and_in_band_sets() -> None:
    sps, pps, other_pps = b"\x67\x42\xc0\x1f", b"\x68\xce", b"\x68\xff"
    sets = ParameterSets(sps=(sps,), pps=(other_pps,))
    au = to_annexb([b"\x09\xf0", pps, b"\x65\x88"])  # AUD, in-band PPS, IDR; no SPS
    fixed = split_annexb(ensure_parameter_sets(au, sets))
    assert [nal_type(n) for n in fixed] == [NAL_AUD, NAL_SPS, NAL_PPS, NAL_IDR]
    assert fixed[2] == pps  # the access unit's own PPS wins over the older one


def test_parse_sps_rejects_other_nal_types() -> None:
    with pytest.raises(BitstreamError):
        parse_sps(b"\x68\xce\x3c\x80")
