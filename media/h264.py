"""H.264 bitstream helpers: Annex B NAL splitting, SPS parsing, parameter-set handling.

Just enough to forward H.264 without decoding it: read profile-level-id and picture size
from the SPS (ITU-T H.264 § 7.3.2.1.1), and make every IDR carry its SPS/PPS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from media.bitreader import BitReader, BitstreamError

logger = logging.getLogger(__name__)

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9

START_CODE = b"\x00\x00\x00\x01"

# Profiles whose SPS carries chroma format, bit depths and scaling lists (§ 7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def split_annexb(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream into NAL units, without start codes or trailing zeros.

    Accepts 3- and 4-byte start codes; bytes before the first start code are ignored.
    """
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    while start >= 0:
        following = data.find(b"\x00\x00\x01", start + 3)
        nal = data[start + 3 : following if following >= 0 else len(data)].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = following
    return nals


def is_annexb(data: bytes) -> bool:
    """Whether ``data`` begins with an Annex B start code."""
    return data.startswith((b"\x00\x00\x01", START_CODE))


def nal_type(nal: bytes) -> int:
    """Return nal_unit_type (the low five bits of the NAL header byte)."""
    if not nal:
        raise BitstreamError("empty NAL unit")
    return nal[0] & 0x1F


def is_idr(nal: bytes) -> bool:
    """Whether the NAL unit is a slice of an IDR picture."""
    return nal_type(nal) == NAL_IDR


def is_sps(nal: bytes) -> bool:
    """Whether the NAL unit is a sequence parameter set."""
    return nal_type(nal) == NAL_SPS


def is_pps(nal: bytes) -> bool:
    """Whether the NAL unit is a picture parameter set."""
    return nal_type(nal) == NAL_PPS


def to_annexb(nals: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Join NAL units into an Annex B byte stream with 4-byte start codes."""
    return b"".join(START_CODE + nal for nal in nals)


def unescape_rbsp(nal_payload: bytes) -> bytes:
    """Remove emulation-prevention bytes (the 0x03 in every 00 00 03 sequence)."""
    if b"\x00\x00\x03" not in nal_payload:
        return nal_payload
    out = bytearray()
    zeros = 0
    for byte in nal_payload:
        if zeros >= 2 and byte == 0x03:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


@dataclass(frozen=True, slots=True)
class SpsInfo:
    """The fields of a sequence parameter set the gateway cares about."""

    profile_idc: int
    constraint_flags: int  # the byte holding constraint_set0..5_flag and reserved bits
    level_idc: int
    width: int
    height: int
    chroma_format_idc: int
    frame_rate: float | None  # from VUI timing info, when the encoder wrote it

    @property
    def profile_level_id(self) -> str:
        """The SDP ``profile-level-id`` (RFC 6184), e.g. ``"42e01f"``."""
        return f"{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse an SPS NAL unit (header byte included) up to the picture size and timing."""
    if nal_type(nal) != NAL_SPS:
        raise BitstreamError(f"NAL type {nal_type(nal)} is not an SPS")
    reader = BitReader(unescape_rbsp(nal[1:]))
    profile_idc = reader.read_bits(8)
    constraint_flags = reader.read_bits(8)
    level_idc = reader.read_bits(8)
    reader.read_ue()  # seq_parameter_set_id
    chroma_format_idc = 1  # 4:2:0 is implied when the profile does not signal it
    separate_colour_plane = False
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = reader.read_ue()
        if chroma_format_idc == 3:
            separate_colour_plane = reader.read_flag()
        reader.read_ue()  # bit_depth_luma_minus8
        reader.read_ue()  # bit_depth_chroma_minus8
        reader.read_flag()  # qpprime_y_zero_transform_bypass_flag
        if reader.read_flag():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.read_flag():  # seq_scaling_list_present_flag[i]
                    _skip_scaling_list(reader, 16 if index < 6 else 64)
    reader.read_ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = reader.read_ue()
    if pic_order_cnt_type == 0:
        reader.read_ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        reader.read_flag()  # delta_pic_order_always_zero_flag
        reader.read_se()  # offset_for_non_ref_pic
        reader.read_se()  # offset_for_top_to_bottom_field
        for _ in range(reader.read_ue()):  # num_ref_frames_in_pic_order_cnt_cycle
            reader.read_se()
    reader.read_ue()  # max_num_ref_frames
    reader.read_flag()  # gaps_in_frame_num_value_allowed_flag
    width_in_mbs = reader.read_ue() + 1
    height_in_map_units = reader.read_ue() + 1
    frame_mbs_only = reader.read_flag()
    if not frame_mbs_only:
        reader.read_flag()  # mb_adaptive_frame_field_flag
    reader.read_flag()  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if reader.read_flag():  # frame_cropping_flag
        crop_left, crop_right = reader.read_ue(), reader.read_ue()
        crop_top, crop_bottom = reader.read_ue(), reader.read_ue()
    # Cropping is counted in chroma sample units (§ 7.4.2.1.1, CropUnitX/CropUnitY).
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    field_factor = 1 if frame_mbs_only else 2
    if chroma_array_type == 0:
        crop_unit_x, crop_unit_y = 1, field_factor
    else:
        sub_width = 1 if chroma_format_idc == 3 else 2
        sub_height = 2 if chroma_format_idc == 1 else 1
        crop_unit_x, crop_unit_y = sub_width, sub_height * field_factor
    width = width_in_mbs * 16 - crop_unit_x * (crop_left + crop_right)
    height = field_factor * height_in_map_units * 16 - crop_unit_y * (crop_top + crop_bottom)
    frame_rate = _read_vui_frame_rate(reader) if reader.read_flag() else None
    return SpsInfo(
        profile_idc, constraint_flags, level_idc, width, height, chroma_format_idc, frame_rate
    )


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    last_scale = next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last_scale + reader.read_se() + 256) % 256
        last_scale = next_scale if next_scale != 0 else last_scale


def _read_vui_frame_rate(reader: BitReader) -> float | None:
    """Read the VUI up to timing_info; frame rate = time_scale / (2 * num_units_in_tick)."""
    try:
        # aspect_ratio_info_present_flag, then aspect_ratio_idc == Extended_SAR
        if reader.read_flag() and reader.read_bits(8) == 255:
            reader.read_bits(32)  # sar_width, sar_height
        if reader.read_flag():  # overscan_info_present_flag
            reader.read_flag()
        if reader.read_flag():  # video_signal_type_present_flag
            reader.read_bits(4)  # video_format, video_full_range_flag
            if reader.read_flag():  # colour_description_present_flag
                reader.read_bits(24)
        if reader.read_flag():  # chroma_loc_info_present_flag
            reader.read_ue()
            reader.read_ue()
        if not reader.read_flag():  # timing_info_present_flag
            return None
        num_units_in_tick = reader.read_bits(32)
        time_scale = reader.read_bits(32)
    except BitstreamError:
        # Some encoders truncate the VUI; the picture size parsed before it is still good.
        return None
    if num_units_in_tick == 0 or time_scale == 0:
        return None
    return time_scale / (2 * num_units_in_tick)


@dataclass(frozen=True, slots=True)
class ParameterSets:
    """The SPS and PPS NAL units of a stream (header bytes included, no start codes)."""

    sps: tuple[bytes, ...] = ()
    pps: tuple[bytes, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether at least one SPS and one PPS are known."""
        return bool(self.sps) and bool(self.pps)

    @property
    def nals(self) -> tuple[bytes, ...]:
        """SPS first, then PPS: the order a decoder needs them in."""
        return self.sps + self.pps

    def annexb(self) -> bytes:
        """The parameter sets as an Annex B byte stream."""
        return to_annexb(self.nals)

    def sps_info(self) -> SpsInfo | None:
        """The parsed first SPS, or None when there is none or it does not parse."""
        try:
            return parse_sps(self.sps[0]) if self.sps else None
        except BitstreamError:
            logger.warning("could not parse the stream's SPS", exc_info=True)
            return None


def parameter_sets(extradata: bytes | None) -> ParameterSets:
    """Extract SPS/PPS from codec extradata, in Annex B or avcC form.

    RTSP demuxing gives Annex B extradata (from ``sprop-parameter-sets``); MP4-style
    sources give an AVCDecoderConfigurationRecord (avcC, first byte 1).
    """
    if not extradata:
        return ParameterSets()
    if is_annexb(extradata):
        nals = split_annexb(extradata)
    elif extradata[0] == 1:
        nals = _avcc_nals(extradata)
    else:
        raise BitstreamError("extradata is neither Annex B nor avcC")
    return parameter_sets_in(nals)


def parameter_sets_in(nals: list[bytes]) -> ParameterSets:
    """The SPS/PPS found among ``nals`` (e.g. those carried in-band by a keyframe)."""
    sps = tuple(nal for nal in nals if nal_type(nal) == NAL_SPS)
    pps = tuple(nal for nal in nals if nal_type(nal) == NAL_PPS)
    return ParameterSets(sps=sps, pps=pps)


def _avcc_nals(record: bytes) -> list[bytes]:
    """NAL units of an avcC record: SPS list at byte 5, PPS list after it (ISO 14496-15)."""
    nals: list[bytes] = []
    try:
        offset = 5
        for count_mask in (0x1F, 0xFF):
            count = record[offset] & count_mask
            offset += 1
            for _ in range(count):
                length = int.from_bytes(record[offset : offset + 2], "big")
                offset += 2
                nal = record[offset : offset + length]
                if len(nal) != length:
                    raise BitstreamError("avcC parameter set is truncated")
                nals.append(nal)
                offset += length
    except IndexError as exc:
        raise BitstreamError("avcC record is truncated") from exc
    return nals


def ensure_parameter_sets(packet_bytes: bytes, sps_pps: ParameterSets) -> bytes:
    """Return the Annex B access unit with SPS/PPS in front of its IDR slice if missing.

    Packets without an IDR slice, or that already carry both an SPS and a PPS, are
    returned unchanged (the same object). Parameter sets the access unit does carry are
    kept (they may be newer than ``sps_pps``); only the missing kind is added. They go
    after a leading access unit delimiter, which must stay first (§ 7.4.1.2.3).
    """
    if not sps_pps.complete:
        return packet_bytes
    nals = split_annexb(packet_bytes)
    types = [nal_type(nal) for nal in nals]
    if NAL_IDR not in types or (NAL_SPS in types and NAL_PPS in types):
        return packet_bytes
    in_band = parameter_sets_in(nals)
    leading = nals[:1] if types[0] == NAL_AUD else []
    rest = [nal for nal, kind in zip(nals, types, strict=True) if kind not in (NAL_SPS, NAL_PPS)]
    rest = rest[len(leading) :]
    sets = list(in_band.sps or sps_pps.sps) + list(in_band.pps or sps_pps.pps)
    return to_annexb(leading + sets + rest)
