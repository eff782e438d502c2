"""HlsRecorder fed by RtspIngest from a real RTSP camera with a 1 s GOP."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from media.hls import HlsRecorder, SegmentInfo, live_playlist, vod_playlist
from media.ingest import RtspIngest
from tests.camera import TestCamera
from tests.media.conftest_media import CAMERA_PROFILE

pytestmark = pytest.mark.asyncio

FPS = CAMERA_PROFILE.fps


@pytest.fixture
def camera() -> Iterator[TestCamera]:
    """A running 640x360, 15 fps, 1 s GOP test camera."""
    with TestCamera(CAMERA_PROFILE) as running:
        yield running


def read_segment(path: Path) -> tuple[int, float, list[int], bool]:
    """Decode a segment with PyAV: frames, duration from pts, packet dts, keyframe first."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        dts: list[int] = []
        pts: list[int] = []
        first_key = None
        frames = 0
        for packet in container.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            if first_key is None:
                first_key = packet.is_keyframe
            dts.append(packet.dts)
            pts.append(packet.pts)
            frames += len(packet.decode())
        frames += len(stream.codec_context.decode(None))
        assert stream.time_base is not None
        duration = float((max(pts) - min(pts)) * stream.time_base) + 1 / FPS
    return frames, duration, dts, bool(first_key)


async def test_segments_are_six_seconds_and_decode(camera: TestCamera, tmp_path: Path) -> None:
    segments: list[SegmentInfo] = []
    recorder = HlsRecorder(tmp_path, start_sequence=41, on_segment=segments.append)
    recorder.start()
    ingest = RtspIngest(camera.url)
    ingest.add_sink(recorder)
    await ingest.open()
    try:
        await _wait_for_segments(segments, 2, timeout=20)
    finally:
        await ingest.stop()
        await recorder.stop()
    # Two full segments, then the partial one closed by stop().
    assert [s.filename for s in segments[:3]] == ["seg_41.ts", "seg_42.ts", "seg_43.ts"]
    assert recorder.next_sequence == 41 + len(segments)
    assert recorder.dropped == 0
    all_dts: list[int] = []
    for segment in segments:
        assert segment.path == tmp_path / segment.filename and segment.path.exists()
        assert segment.size == segment.path.stat().st_size > 0
        assert segment.start.tzinfo is not None
        frames, duration, dts, keyframe_first = read_segment(segment.path)
        assert keyframe_first
        assert duration == pytest.approx(segment.duration, abs=0.01)
        assert frames == len(dts)  # every packet decodes to a frame
        all_dts += dts
    for segment in segments[:2]:
        # Cut at the first keyframe at or after 6 s; with a 1 s GOP, exactly 6 s.
        assert segment.duration == pytest.approx(6.0, abs=0.01)
        assert read_segment(segment.path)[0] == 6 * FPS
        assert (segment.end - segment.start).total_seconds() == pytest.approx(6.0, abs=0.01)
    # Contiguous: each segment starts where the previous ended (arrival jitter aside).
    gap = (segments[1].start - segments[0].end).total_seconds()
    assert abs(gap) < 0.3
    assert not segments[1].discontinuity
    # One timeline across files.
    assert all(b > a for a, b in itertools.pairwise(all_dts))
    playlist = live_playlist(segments, target_duration=6)
    assert "#EXT-X-MEDIA-SEQUENCE:41" in playlist and "#EXT-X-DISCONTINUITY" not in playlist
    assert vod_playlist(segments).rstrip().endswith("#EXT-X-ENDLIST")


async def _wait_for_segments(segments: list[SegmentInfo], count: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while len(segments) < count:
            await asyncio.sleep(0.1)
