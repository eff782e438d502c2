"""Camera audio through the media package: the ingest delivers the camera's audio beside
its video, HLS segments and bookmark clips carry it (AAC as it is; G.711 as AAC, see
docs/codecs.md), and what they carry is the camera's tone (real RTSP cameras, real PyAV)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from media.clip import cut_clip
from media.hls import HlsRecorder, SegmentInfo
from media.ingest import RtspIngest
from tests.camera import TestCamera
from tests.media.conftest_media import CAMERA_PROFILE

pytestmark = pytest.mark.asyncio

TONE_HZ = 1000


@pytest.fixture(scope="module", params=["aac", "pcma"])
def audio_camera(request: pytest.FixtureRequest) -> Iterator[TestCamera]:
    profile = dataclasses.replace(CAMERA_PROFILE, audio=True, audio_codec=request.param,
                                  tone_hz=TONE_HZ)
    with TestCamera(profile) as camera:
        yield camera


def dominant_hz(path: Path) -> tuple[str, float, int]:
    """(audio codec, the decoded audio's dominant frequency, samples) of a media file."""
    with av.open(str(path)) as container:
        assert container.streams.video, "no video stream"
        assert container.streams.audio, f"{path.name} has no audio stream"
        stream = container.streams.audio[0]
        codec, rate = stream.codec_context.name, stream.codec_context.sample_rate
        samples = np.concatenate([frame.to_ndarray().reshape(-1)
                                  for frame in container.decode(stream)]).astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    spectrum[0] = 0
    return codec, float(np.argmax(spectrum)) * rate / len(samples), len(samples)


async def test_recording_and_clip_keep_the_cameras_audio(audio_camera: TestCamera,
                                                         tmp_path: Path) -> None:
    segments: list[SegmentInfo] = []
    recorder = HlsRecorder(tmp_path, target_duration=1.0, on_segment=segments.append)
    ingest = RtspIngest(audio_camera.url)
    recorder.set_audio(lambda: ingest.audio_info)
    ingest.add_audio_sink(recorder.audio_sink)
    ingest.add_sink(recorder)
    recorder.start()
    try:
        await ingest.open()
        expected = {"aac": "aac", "pcma": "pcm_alaw"}[audio_camera.profile.audio_codec]
        assert ingest.audio_info is not None and ingest.audio_info.codec == expected
        async with asyncio.timeout(15):
            while len(segments) < 3:
                await asyncio.sleep(0.1)
    finally:
        await ingest.stop()
        await recorder.stop()
    for index, segment in enumerate(segments[:3]):
        codec, hz, samples = dominant_hz(segment.path)
        assert codec == "aac"  # passthrough for AAC, encoded from G.711 (docs/codecs.md)
        assert abs(hz - TONE_HZ) < 20, f"{segment.filename}: tone at {hz:.0f} Hz"
        if index > 0:  # the first one opens before the camera's first audio packet
            # Whole AAC frames (1024 samples) on either side of the cut: two may fall short.
            expected = segment.duration * ingest.audio_info.sample_rate
            assert samples >= expected - 2 * 1024, (segment.filename, samples, expected)
    starts = [segment.start.timestamp() for segment in segments]
    clip = cut_clip([s.path for s in segments], starts, starts[0] + 0.3, starts[-1] + 0.5,
                    tmp_path / "clip.mp4")
    codec, hz, samples = dominant_hz(clip.path)
    assert codec == "aac" and abs(hz - TONE_HZ) < 20
    # The clip opens 0.3 s into the first segment: the audio began about then too.
    assert samples >= 0.6 * clip.duration_seconds * ingest.audio_info.sample_rate
