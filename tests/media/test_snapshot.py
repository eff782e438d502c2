"""Live and historical snapshots from real H.264 (PyAV's libx264) and real MPEG-TS segments.

Every frame of the synthetic footage shows its own number as a row of black/white blocks,
so a test can read back exactly which frame a JPEG or a clip holds. The helpers here are
shared with ``test_clip.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from av.video.frame import VideoFrame

from media.cut_errors import MediaCutError, NoFootageError, SnapshotError
from media.gop_cache import GopCache
from media.packet import MediaPacket
from media.snapshot import TimedFrame, jpeg_at, jpeg_from_packets, nearest_frame

WIDTH, HEIGHT = 320, 180  # 180 is not a multiple of 16: the SPS crops, sizes must honour it
FPS = 30
GOP = 30
SEGMENT_FRAMES = 6 * FPS
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: wall-clock time of frame 0
TIME_BASE = Fraction(1, FPS)

_BITS = 10  # frame numbers up to 1023
_BLOCK = 28
_BAND = (4, 36)  # rows of the counter band


@dataclass(frozen=True)
class Footage:
    """Encoded frames (frame n arrives at T0 + n / FPS) and their recorded segments."""

    packets: list[MediaPacket]
    segments: list[Path]
    starts: list[float]  # wall-clock start of each segment, as the recorder indexes it
    pts_offsets: list[int]  # frames added to each segment's timestamps (discontinuities)


def draw_frame(number: int, width: int = WIDTH, height: int = HEIGHT) -> VideoFrame:
    """A yuv420p picture: ``number`` in binary as blocks on top, moving stripes below."""
    luma = np.empty((height, width), dtype=np.uint8)
    columns = np.arange(width, dtype=np.int64)
    luma[:] = ((columns * 2 + number * 6) % 200 + 28).astype(np.uint8)
    top, bottom = _BAND
    luma[top:bottom, :] = 128
    for bit in range(_BITS):
        value = 235 if (number >> bit) & 1 else 16
        luma[top:bottom, bit * _BLOCK : (bit + 1) * _BLOCK] = value
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)
    return VideoFrame.from_ndarray(np.vstack([luma, chroma]), format="yuv420p")


def read_counter(frame: VideoFrame) -> int:
    """The frame number drawn by :func:`draw_frame`, read from the picture's luma."""
    gray = frame.to_ndarray(format="gray")
    top, bottom = _BAND
    number = 0
    for bit in range(_BITS):
        block = gray[top + 8 : bottom - 8, bit * _BLOCK + 8 : (bit + 1) * _BLOCK - 8]
        if float(block.mean()) > 128:
            number |= 1 << bit
    return number


def encode_counter_video(
    frames: int, width: int = WIDTH, height: int = HEIGHT, *, b_frames: int = 0
) -> list[MediaPacket]:
    """H.264 at 30 fps, a keyframe every 30 frames carrying SPS/PPS (as the ingest's).

    Baseline by default, as most cameras send; with ``b_frames``, High profile with that
    many B-frames (decode order then differs from presentation order).
    """
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.time_base = TIME_BASE
    encoder.framerate = Fraction(FPS)
    encoder.options = {
        "preset": "veryfast" if b_frames else "ultrafast",
        "profile": "high" if b_frames else "baseline",
        "bf": str(b_frames),
        "g": str(GOP),
        "keyint_min": str(GOP),
        "x264-params": "repeat-headers=1:scenecut=0:open-gop=0",
    }
    encoded: list[av.Packet[Any]] = []
    for number in range(frames):
        frame = draw_frame(number, width, height)
        frame.pts = number
        encoded += encoder.encode(frame)
    encoded += encoder.encode(None)
    packets = [
        MediaPacket(
            data=bytes(packet),
            pts=packet.pts,
            dts=packet.dts,
            time_base=TIME_BASE,
            is_keyframe=packet.is_keyframe,
            wallclock=T0 + packet.pts / FPS,
        )
        for packet in encoded
        if packet.pts is not None
    ]
    assert sorted(p.pts for p in packets) == list(range(frames))
    assert [p.pts for p in packets if p.is_keyframe] == list(range(0, frames, GOP))
    assert all(p.is_keyframe for p in packets[::GOP])  # closed GOPs: cut anywhere on one
    return packets


def write_segments(
    packets: list[MediaPacket],
    directory: Path,
    *,
    start_jitter: list[float],
    pts_offsets: list[int],
) -> tuple[list[Path], list[float]]:
    """Mux consecutive 6 s MPEG-TS files, each opening on a keyframe, like the recorder.

    ``start_jitter`` shifts each segment's indexed wall-clock start (arrival-time noise);
    ``pts_offsets`` shifts its timestamps (a source restart the recorder did not smooth).
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    starts: list[float] = []
    for index in range(0, len(packets), SEGMENT_FRAMES):
        chunk = packets[index : index + SEGMENT_FRAMES]
        number = index // SEGMENT_FRAMES
        assert chunk[0].is_keyframe
        path = directory / f"seg_{number}.ts"
        with av.open(str(path), "w", format="mpegts") as output:
            stream = output.add_mux_stream("h264", width=WIDTH, height=HEIGHT)
            stream.time_base = Fraction(1, 90000)
            for packet in chunk:
                av_packet = packet.shifted(pts_offsets[number]).to_av()
                av_packet.stream = stream
                output.mux(av_packet)
        paths.append(path)
        starts.append(chunk[0].wallclock + start_jitter[number])
    return paths, starts


def make_footage(directory: Path) -> Footage:
    """30 s in five segments; segment 2 jumps 1000 s ahead, segment 3 restarts near 1 s,
    and the indexed starts of segments 2 and 3 are off by +4 ms and -50 ms."""
    packets = encode_counter_video(5 * SEGMENT_FRAMES)
    pts_offsets = [0, 0, 1000 * FPS, -(3 * SEGMENT_FRAMES) + FPS, 0]
    segments, starts = write_segments(
        packets, directory, start_jitter=[0, 0, 0.004, -0.05, 0], pts_offsets=pts_offsets
    )
    return Footage(packets=packets, segments=segments, starts=starts, pts_offsets=pts_offsets)


def decode_jpeg(data: bytes) -> VideoFrame:
    """Decode JPEG bytes with FFmpeg's mjpeg decoder (a real, independent JPEG reader)."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    decoder = av.CodecContext.create("mjpeg", "r")
    frames = decoder.decode(av.Packet(data)) + decoder.decode(None)
    assert len(frames) == 1
    frame = frames[0]
    assert isinstance(frame, VideoFrame)
    return frame


@pytest.fixture(scope="module")
def footage(tmp_path_factory: pytest.TempPathFactory) -> Footage:
    return make_footage(tmp_path_factory.mktemp("segments"))


# -- live ------------------------------------------------------------------------------


def test_live_snapshot_is_the_newest_frame_of_the_gop_cache(footage: Footage) -> None:
    cache = GopCache()
    for packet in footage.packets[:81]:
        cache.add(packet)
    gop = cache.snapshot()
    assert gop[0].pts == 60 and gop[-1].pts == 80

    image = jpeg_from_packets(gop)

    assert (image.width, image.height) == (WIDTH, HEIGHT)
    frame = decode_jpeg(image.data)
    assert (frame.width, frame.height) == (WIDTH, HEIGHT)
    assert read_counter(frame) == 80  # the newest frame, not the keyframe (60)
    assert image.pts_seconds == pytest.approx(80 / FPS)
    assert image.wallclock == pytest.approx(T0 + 80 / FPS)


def test_live_snapshot_starts_at_the_last_keyframe(footage: Footage) -> None:
    # Packets before the last keyframe are not needed: garbage there changes nothing.
    before = [
        MediaPacket(b"\x00\x00\x00\x01\x41garbage", p.pts, p.dts, TIME_BASE, False, p.wallclock)
        for p in footage.packets[40:60]
    ]
    image = jpeg_from_packets(before + footage.packets[60:75])
    assert read_counter(decode_jpeg(image.data)) == 74


def test_keyframe_alone_gives_the_keyframe(footage: Footage) -> None:
    image = jpeg_from_packets(footage.packets[90:91])
    assert read_counter(decode_jpeg(image.data)) == 90


def test_quality_changes_the_size(footage: Footage) -> None:
    gop = footage.packets[0:5]
    small = jpeg_from_packets(gop, quality=5)
    large = jpeg_from_packets(gop, quality=100)
    assert len(small.data) < len(large.data)
    assert read_counter(decode_jpeg(small.data)) == 4
    with pytest.raises(ValueError, match="quality"):
        jpeg_from_packets(gop, quality=0)


def test_no_keyframe_or_nothing_decodable_raises(footage: Footage) -> None:
    with pytest.raises(SnapshotError, match="no keyframe"):
        jpeg_from_packets(footage.packets[1:20])
    with pytest.raises(SnapshotError):
        jpeg_from_packets([])
    junk = MediaPacket(b"\x00\x00\x00\x01\x65" + bytes(64), 0, 0, TIME_BASE, True, T0)
    with pytest.raises(SnapshotError, match="decoded"):
        jpeg_from_packets([junk])
    assert issubclass(SnapshotError, MediaCutError)


# -- historical ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, 0),  # the first frame of the recording
        (2.51, 75),  # inside segment 0
        (14.51, 435),  # segment 2: its timestamps jumped 1000 s; its start is 4 ms late
        (20.01, 602),  # segment 3: timestamps restarted, start indexed 50 ms early
        (29.99, 899),  # the last frame
    ],
)
def test_historical_snapshot_is_the_frame_of_that_moment(
    footage: Footage, seconds: float, expected: int
) -> None:
    image = jpeg_at(footage.segments, footage.starts, T0 + seconds)
    number = read_counter(decode_jpeg(image.data))
    assert abs(number - expected) <= 1
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    assert image.wallclock is not None and abs(image.wallclock - (T0 + seconds)) <= 1 / FPS


def test_historical_snapshot_between_segments_takes_the_nearer_side(footage: Footage) -> None:
    # Segment 2's first frame (360) is indexed at T0 + 12.004; frame 359 is at 11.967.
    just_before = jpeg_at(footage.segments, footage.starts, T0 + 11.97)
    assert read_counter(decode_jpeg(just_before.data)) == 359
    just_after = jpeg_at(footage.segments, footage.starts, T0 + 11.9995)
    assert read_counter(decode_jpeg(just_after.data)) == 360


def test_historical_snapshot_outside_the_recording_raises(footage: Footage) -> None:
    with pytest.raises(NoFootageError, match="nearest frame"):
        jpeg_at(footage.segments, footage.starts, T0 - 60)
    with pytest.raises(NoFootageError):
        jpeg_at(footage.segments, footage.starts, T0 + 40)
    with pytest.raises(NoFootageError):
        jpeg_at([], [], T0)
    with pytest.raises(ValueError, match="length"):
        jpeg_at(footage.segments, footage.starts[:-1], T0)


def test_nearest_frame_stops_at_the_first_frame_past_the_time() -> None:
    picture = draw_frame(0, 16, 16)
    pulled: list[int] = []

    def frames() -> Iterator[TimedFrame]:
        for number in itertools.count():
            pulled.append(number)
            yield TimedFrame(time=number / 10, pts_seconds=number / 10, frame=picture)

    best = nearest_frame(frames(), 0.52)
    assert best is not None and best.time == pytest.approx(0.5)
    assert pulled == [0, 1, 2, 3, 4, 5, 6]  # 0.6 is past 0.52: nothing after it is read
    tie = nearest_frame(frames(), 0.25)
    assert tie is not None and tie.time == pytest.approx(0.2)  # the picture on screen then
    assert nearest_frame(iter([]), 1.0) is None


def test_missing_segment_file_raises_a_cut_error(footage: Footage, tmp_path: Path) -> None:
    # Retention can delete a file between the index query and the read.
    gone = [tmp_path / "seg_deleted.ts", *footage.segments[1:]]
    with pytest.raises(MediaCutError, match=r"seg_deleted\.ts: cannot be read"):
        jpeg_at(gone, footage.starts, T0 + 1)
