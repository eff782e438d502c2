"""H.265 and MJPEG cameras through the media package: the ingest takes them, the recorder
keeps H.265 as it is, and the VideoTranscoder turns them into constrained-baseline H.264
while started (real RTSP cameras, real PyAV)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from media.h264 import NAL_SPS, nal_type, parse_sps, split_annexb
from media.hls import HlsRecorder, SegmentInfo
from media.ingest import RtspIngest
from media.packet import MediaPacket
from media.snapshot import jpeg_from_packets
from media.transcode import TranscodeSettings, VideoTranscoder
from tests.camera import TestCamera
from tests.media.conftest_media import CAMERA_PROFILE

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def h265_camera() -> Iterator[TestCamera]:
    with TestCamera(dataclasses.replace(CAMERA_PROFILE, codec="h265")) as camera:
        yield camera


@pytest.fixture(scope="module")
def mjpeg_camera() -> Iterator[TestCamera]:
    with TestCamera(dataclasses.replace(CAMERA_PROFILE, codec="mjpeg")) as camera:
        yield camera


class Collect:
    """A packet sink that keeps what it is given."""

    def __init__(self) -> None:
        self.packets: list[MediaPacket] = []

    def on_packet(self, packet: MediaPacket) -> None:
        self.packets.append(packet)


async def until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def decode_h264(packets: list[MediaPacket]) -> list[av.VideoFrame]:
    decoder = av.CodecContext.create("h264", "r")
    frames: list[av.VideoFrame] = []
    for packet in packets:
        frames += [f for f in decoder.decode(packet.to_av()) if isinstance(f, av.VideoFrame)]
    return frames


async def test_h265_is_recorded_as_it_is_and_snapshots_decode(
    h265_camera: TestCamera, tmp_path: Path
) -> None:
    segments: list[SegmentInfo] = []
    recorder = HlsRecorder(tmp_path, target_duration=2.0, on_segment=segments.append)
    recorder.start()
    ingest = RtspIngest(h265_camera.url)
    ingest.add_sink(recorder)
    info = await ingest.open()
    try:
        assert info.codec == "hevc" and (info.width, info.height) == (640, 360)
        await until(lambda: len(segments) >= 1)
        snapshot = jpeg_from_packets(ingest.gop_cache.snapshot())
    finally:
        await ingest.stop()
        await recorder.stop()
    assert snapshot.data.startswith(b"\xff\xd8")
    with av.open(str(segments[0].path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc"
        frames = [f for p in container.demux(stream) for f in p.decode()]
    assert len(frames) >= CAMERA_PROFILE.fps  # two seconds at 15 fps, at least one
    assert (frames[0].width, frames[0].height) == (640, 360)


async def test_transcoder_serves_baseline_h264_only_while_started(
    h265_camera: TestCamera,
) -> None:
    ingest = RtspIngest(h265_camera.url)
    cpu: list[float] = []
    transcoder = VideoTranscoder(ingest.gop_cache, TranscodeSettings(width=320, kbps=300),
                                 fps=CAMERA_PROFILE.fps, name="test", cpu_meter=cpu.append)
    out = Collect()
    transcoder.sinks.append(out)
    ingest.add_sink(transcoder)
    await ingest.open()
    try:
        await until(lambda: len(ingest.gop_cache) > 0)
        await asyncio.sleep(0.5)
        assert out.packets == [] and cpu == []  # nothing is decoded before anyone asks
        transcoder.start()
        await until(lambda: len(out.packets) >= 2 * CAMERA_PROFILE.fps)
        transcoder.stop()
        stopped_at = len(out.packets)
        await asyncio.sleep(0.5)
        assert len(out.packets) <= stopped_at + 1  # at most the frame in hand
        assert len(transcoder.gop_cache) == 0
        transcoder.start()  # a second first consumer: it starts again
        await until(lambda: len(out.packets) >= stopped_at + 5)
    finally:
        transcoder.stop()
        await ingest.stop()
    first = out.packets[0]
    assert first.codec == "h264" and first.is_keyframe
    sps = next(parse_sps(n) for n in split_annexb(first.data) if nal_type(n) == NAL_SPS)
    assert (sps.width, sps.height) == (320, 180)
    assert sps.profile_level_id.startswith("42")  # baseline, constrained (no B, no CABAC)
    keyframes = [p for p in out.packets[:stopped_at] if p.is_keyframe]
    assert len(keyframes) >= 2  # a keyframe every second (the camera's GOP is 1 s too)
    frames = decode_h264(out.packets[:stopped_at])
    assert len(frames) >= stopped_at - 1 and (frames[0].width, frames[0].height) == (320, 180)
    assert transcoder.starts == 2 and transcoder.first_output_s is not None
    # Its thread's CPU was told as it worked, a figure per frame: decoding and encoding two
    # seconds of 320x180 video costs ~45 ms on a 2026 server core, far above nothing.
    assert len(cpu) >= stopped_at and all(c >= 0 for c in cpu) and sum(cpu) > 0.01


async def test_mjpeg_camera_is_taken_and_transcoded(mjpeg_camera: TestCamera) -> None:
    ingest = RtspIngest(mjpeg_camera.url)
    transcoder = VideoTranscoder(ingest.gop_cache, TranscodeSettings(), fps=15, name="mjpeg")
    out = Collect()
    transcoder.sinks.append(out)
    ingest.add_sink(transcoder)
    info = await ingest.open()
    transcoder.start()
    try:
        assert info.codec == "mjpeg"
        await until(lambda: len(out.packets) >= 10)
        snapshot = jpeg_from_packets(ingest.gop_cache.snapshot())
    finally:
        transcoder.stop()
        await ingest.stop()
    assert snapshot.data.startswith(b"\xff\xd8")
    frames = decode_h264(out.packets)
    assert (frames[0].width, frames[0].height) == (640, 360)
