"""Clips cut from real MPEG-TS segments into MP4 without re-encoding, and their thumbnails.

Footage and frame-number reading come from ``test_snapshot`` (frames numbered in their
pixels, 30 fps, a keyframe every second, 6 s segments with timestamp discontinuities).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from av.video.frame import VideoFrame

from media.clip import ClipInfo, cut_clip, thumbnail
from media.cut_errors import MediaCutError, NoFootageError
from media.h264 import NAL_SPS, nal_type, split_annexb
from media.hls import HlsRecorder, SegmentInfo
from tests.media.test_snapshot import (
    FPS,
    HEIGHT,
    T0,
    WIDTH,
    Footage,
    decode_jpeg,
    encode_counter_video,
    make_footage,
    read_counter,
    write_segments,
)

VCL_TYPES = {1, 5}  # coded slices: what a re-encode would change


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    return make_footage(tmp_path_factory.mktemp("segments"))


@pytest.fixture(scope="module")
def clip(
    recorded: Footage, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ClipInfo, list[float]]:
    """15 s from T0 + 7.4 to T0 + 22.45: segments 1, 2 and 3."""
    output = tmp_path_factory.mktemp("clips") / "bookmark.mp4"
    fractions: list[float] = []
    info = cut_clip(
        recorded.segments, recorded.starts, T0 + 7.4, T0 + 22.45, output, progress=fractions.append
    )
    return info, fractions


def top_level_boxes(path: Path) -> list[str]:
    """ISO BMFF top-level box types in file order."""
    boxes = []
    data = path.read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind.decode("latin-1"))
        offset += size
    return boxes


def avcc_nals(sample: bytes) -> list[bytes]:
    """NAL units of a length-prefixed (MP4) sample."""
    nals = []
    offset = 0
    while offset < len(sample):
        (length,) = struct.unpack(">I", sample[offset : offset + 4])
        nals.append(sample[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return nals


@dataclass
class Mp4:
    """What a player sees in an MP4's video stream."""

    packets: list[av.Packet[Any]]
    frames: list[VideoFrame]
    duration: float  # seconds, from the container's stream header
    codec: str
    profile: str | None
    extradata: bytes


def read_mp4(path: Path) -> Mp4:
    """Every packet and decoded frame of an MP4's video stream, and its header fields."""
    packets: list[av.Packet[Any]] = []
    frames: list[VideoFrame] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size:
                packets.append(packet)
            frames += [f for f in packet.decode() if isinstance(f, VideoFrame)]
        assert stream.duration is not None and stream.time_base is not None
        return Mp4(
            packets=packets,
            frames=frames,
            duration=float(stream.duration * stream.time_base),
            codec=stream.codec_context.name,
            profile=stream.codec_context.profile,
            extradata=bytes(stream.codec_context.extradata or b""),
        )


def test_clip_is_cut_on_keyframes_and_lasts_the_range(
    clip: tuple[ClipInfo, list[float]],
) -> None:
    info, _ = clip
    # Starts at the keyframe at or before 7.4 s (frame 210 at 7.0 s); ends with the last
    # frame before 22.45 s: segment 3 is indexed 50 ms early, so frame 674 at 22.417 s.
    assert info.duration_seconds == pytest.approx(15.5, abs=0.01)
    assert 14 <= info.duration_seconds <= 16
    assert info.first_wallclock == pytest.approx(T0 + 7.0)
    assert info.last_wallclock == pytest.approx(T0 + 674 / FPS - 0.05)
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    assert info.size == info.path.stat().st_size > 0


def test_clip_decodes_from_its_first_frame(clip: tuple[ClipInfo, list[float]]) -> None:
    info, _ = clip
    mp4 = read_mp4(info.path)
    assert mp4.packets[0].is_keyframe
    assert len(mp4.frames) == len(mp4.packets) == 465  # every packet decodes: none missing
    assert [read_counter(frame) for frame in mp4.frames] == list(range(210, 675))
    assert (mp4.frames[0].width, mp4.frames[0].height) == (WIDTH, HEIGHT)
    assert mp4.duration == pytest.approx(info.duration_seconds, abs=0.001)


def test_clip_timestamps_start_at_zero_and_rise_across_segments(
    clip: tuple[ClipInfo, list[float]],
) -> None:
    info, _ = clip
    packets = read_mp4(info.path).packets
    seconds = [float(p.dts * p.time_base) for p in packets if p.dts is not None]
    assert seconds[0] == 0.0
    steps = [b - a for a, b in itertools.pairwise(seconds)]
    # One frame apart everywhere: the 1000 s jump, the restart and the early start are gone.
    assert all(abs(step - 1 / FPS) < 0.006 for step in steps), max(steps)
    assert all(p.pts == p.dts for p in packets)


def test_clip_has_faststart(clip: tuple[ClipInfo, list[float]]) -> None:
    info, _ = clip
    boxes = top_level_boxes(info.path)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_clip_is_not_reencoded(recorded: Footage, clip: tuple[ClipInfo, list[float]]) -> None:
    info, _ = clip
    mp4 = read_mp4(info.path)
    source = recorded.packets[210:675]
    for sample, original in zip(mp4.packets, source, strict=True):
        copied = [n for n in avcc_nals(bytes(sample)) if nal_type(n) in VCL_TYPES]
        assert copied == [n for n in split_annexb(original.data) if nal_type(n) in VCL_TYPES]
        assert sample.is_keyframe == original.is_keyframe
    # Same parameter sets: the avcC record holds the source's own SPS.
    source_sps = next(n for n in split_annexb(source[0].data) if nal_type(n) == NAL_SPS)
    assert mp4.extradata[0] == 1 and source_sps in mp4.extradata
    assert mp4.codec == "h264"
    assert mp4.profile in {"Baseline", "Constrained Baseline"}


def test_clip_reports_progress_and_leaves_no_temporary_file(
    clip: tuple[ClipInfo, list[float]],
) -> None:
    info, fractions = clip
    assert len(fractions) > 10
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] == 1.0
    assert [p.name for p in info.path.parent.iterdir()] == ["bookmark.mp4"]


def test_thumbnail_is_a_jpeg_of_the_clip_at_that_time(clip: tuple[ClipInfo, list[float]]) -> None:
    info, _ = clip
    image = thumbnail(info.path, 5.0)
    frame = decode_jpeg(image.data)
    assert (image.width, image.height) == (frame.width, frame.height) == (WIDTH, HEIGHT)
    assert abs(read_counter(frame) - (210 + 5 * FPS)) <= 1
    first = thumbnail(info.path, 0.0)
    assert read_counter(decode_jpeg(first.data)) == 210


def test_range_without_segments_raises(recorded: Footage, tmp_path: Path) -> None:
    output = tmp_path / "clip.mp4"
    with pytest.raises(NoFootageError, match="no recorded"):
        cut_clip(recorded.segments, recorded.starts, T0 - 100, T0 - 50, output)
    with pytest.raises(NoFootageError):
        cut_clip([], [], T0, T0 + 10, output)
    with pytest.raises(MediaCutError, match="empty range"):
        cut_clip(recorded.segments, recorded.starts, T0 + 10, T0 + 10, output)
    # A range after the recording: the last segment is read and holds nothing that late.
    with pytest.raises(NoFootageError, match="no recorded frame"):
        cut_clip(recorded.segments, recorded.starts, T0 + 100, T0 + 110, output)
    assert list(tmp_path.iterdir()) == []  # nothing half-written left behind


def test_range_starting_before_the_recording_starts_at_its_first_frame(
    recorded: Footage, tmp_path: Path
) -> None:
    info = cut_clip(recorded.segments, recorded.starts, T0 - 3, T0 + 2, tmp_path / "c.mp4")
    assert info.first_wallclock == T0
    assert info.duration_seconds == pytest.approx(2.0, abs=0.01)
    assert [read_counter(f) for f in read_mp4(info.path).frames] == list(range(60))


def test_clip_from_the_hls_recorder(recorded: Footage, tmp_path: Path) -> None:
    """Segments as ``HlsRecorder`` writes and indexes them, not hand-muxed."""
    segments: list[SegmentInfo] = []
    recorder = HlsRecorder(tmp_path / "hls", on_segment=segments.append)
    recorder.start()
    for packet in recorded.packets[: 14 * FPS]:
        recorder.on_packet(packet)
    recorder.close()
    assert [round(s.duration) for s in segments] == [6, 6, 2]
    info = cut_clip(
        [s.path for s in segments],
        [s.start.timestamp() for s in segments],
        T0 + 3.0,
        T0 + 11.0,
        tmp_path / "clip.mp4",
    )
    assert info.duration_seconds == pytest.approx(8.0, abs=0.01)
    assert [read_counter(f) for f in read_mp4(info.path).frames] == list(range(90, 330))


def test_unreadable_segment_raises_and_leaves_nothing(recorded: Footage, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ts"
    broken.write_bytes(b"not a transport stream" * 100)
    segments = [recorded.segments[0], broken, recorded.segments[2]]
    output = tmp_path / "out" / "clip.mp4"
    output.parent.mkdir()
    with pytest.raises(MediaCutError, match=r"broken\.ts"):
        cut_clip(segments, recorded.starts[:3], T0 + 1, T0 + 14, output)
    assert list(output.parent.iterdir()) == []


def test_clip_from_a_source_with_b_frames(tmp_path: Path) -> None:
    """High profile with B-frames: decode order is not presentation order."""
    packets = encode_counter_video(12 * FPS, b_frames=2)
    assert any(p.dts != p.pts for p in packets)
    segments, starts = write_segments(
        packets, tmp_path / "segments", start_jitter=[0, 0], pts_offsets=[0, 1000 * FPS]
    )
    info = cut_clip(segments, starts, T0 + 3.4, T0 + 9.45, tmp_path / "clip.mp4")
    mp4 = read_mp4(info.path)
    numbers = [read_counter(f) for f in mp4.frames]
    # From the keyframe at 3 s; the cut stops at the first packet (in decode order) shown
    # at or after 9.45 s, so the B-frames after it (up to two) are left out.
    assert numbers == list(range(90, numbers[-1] + 1))
    assert 9.45 * FPS - 3 <= numbers[-1] < 9.45 * FPS
    assert len(mp4.frames) == len(mp4.packets)
    dts = [p.dts for p in mp4.packets if p.dts is not None]
    assert dts == sorted(set(dts))
    assert min(p.pts for p in mp4.packets if p.pts is not None) == 0
    assert info.duration_seconds == pytest.approx(len(numbers) / FPS, abs=0.001)
