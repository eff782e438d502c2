"""The RTSP test camera, checked through PyAV the way the gateway reads cameras."""

from __future__ import annotations

import itertools
import socket
import statistics
import time
from collections.abc import Callable, Iterator

import av
import av.container
import pytest
from av.video.stream import VideoStream

from tests.camera import (
    CameraStartError,
    SilentRtspServer,
    TestCamera,
    read_frame_timestamp,
    unused_port,
)

StartCamera = Callable[..., TestCamera]  # the start_camera fixture in conftest.py

OPEN_TIMEOUT_US = 2_000_000


def open_rtsp(url: str, timeout_us: int = OPEN_TIMEOUT_US) -> av.container.InputContainer:
    """Open an RTSP URL over TCP, failing within ``timeout_us`` if the server is silent."""
    options = {
        "rtsp_transport": "tcp",
        "timeout": str(timeout_us),
        # FFmpeg otherwise reads ~30 frames to guess the frame rate (2 s at 15 fps);
        # the SDP and SPS already say enough.
        "fpsprobesize": "0",
    }
    return av.open(url, options=options)


def timed_packets(
    container: av.container.InputContainer, count: int
) -> Iterator[tuple[av.Packet[VideoStream], int]]:
    """The first ``count`` video packets that carry a pts (the first one may not), with it."""
    seen = 0
    for packet in container.demux(container.streams.video[0]):
        if packet.pts is None:
            continue
        yield packet, packet.pts
        seen += 1
        if seen == count:
            return


def test_serves_the_profile_resolution_and_frame_rate(start_camera: StartCamera) -> None:
    camera = start_camera(width=320, height=240, fps=25)

    with open_rtsp(camera.url) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        assert stream.average_rate == 25
        pts = [pts for _, pts in timed_packets(container, 12)]

    # RTP video clocks run at 90 kHz: one frame every 90000 / fps ticks.
    assert statistics.median(b - a for a, b in itertools.pairwise(pts)) == 90_000 / 25


@pytest.mark.parametrize("encoder", ["x264", "openh264"])
def test_keyframe_interval_matches_the_gop(start_camera: StartCamera, encoder: str) -> None:
    camera = start_camera(encoder=encoder, fps=30, gop=10)

    with open_rtsp(camera.url) as container:
        keyframes = [
            index
            for index, (packet, _) in enumerate(timed_packets(container, 36))
            if packet.is_keyframe
        ]

    assert len(keyframes) >= 3
    assert {b - a for a, b in itertools.pairwise(keyframes)} == {10}


def test_stopped_camera_refuses_and_restarts_on_the_same_port(
    start_camera: StartCamera,
) -> None:
    camera = start_camera()
    port = camera.port
    with open_rtsp(camera.url) as container:
        assert container.streams.video

    camera.stop()
    with pytest.raises(av.error.ConnectionRefusedError):
        open_rtsp(camera.url)

    camera.restart()
    assert camera.port == port
    with open_rtsp(camera.url) as container:
        packet, _ = next(timed_packets(container, 1))
        assert packet.size > 0


@pytest.mark.parametrize("auth_method", ["digest", "basic"])
def test_credentials_are_required_and_accepted_in_the_url(
    start_camera: StartCamera, auth_method: str
) -> None:
    camera = start_camera(user="admin", password="s3cret", auth_method=auth_method)
    assert camera.url.startswith("rtsp://admin:s3cret@127.0.0.1:")

    anonymous = camera.url.replace("admin:s3cret@", "")
    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(anonymous)
    with pytest.raises(av.error.HTTPUnauthorizedError):
        open_rtsp(camera.url.replace("s3cret", "wrong"))

    with open_rtsp(camera.url) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_no_video_serves_only_audio(start_camera: StartCamera) -> None:
    camera = start_camera(no_video=True)

    # Opening succeeds: a camera without video is only noticed by looking at the streams.
    with open_rtsp(camera.url) as container:
        assert len(container.streams.video) == 0
        assert [s.codec_context.name for s in container.streams.audio] == ["pcm_mulaw"]


def test_audio_track_next_to_video(start_camera: StartCamera) -> None:
    camera = start_camera(audio=True)

    with open_rtsp(camera.url) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]


def test_silent_server_makes_open_time_out(silent_server: SilentRtspServer) -> None:
    started = time.monotonic()
    # FFmpeg reports the unanswered OPTIONS request as invalid data, not as a timeout.
    with pytest.raises(av.error.InvalidDataError):
        open_rtsp(silent_server.url, timeout_us=1_000_000)

    assert 0.9 < time.monotonic() - started < 5
    assert silent_server.connection_count >= 1


def test_unused_port_refuses_connections() -> None:
    with pytest.raises(av.error.ConnectionRefusedError) as caught:
        open_rtsp(f"rtsp://127.0.0.1:{unused_port()}/cam")

    assert isinstance(caught.value, ConnectionRefusedError)


def test_overlay_time_stamps_frames_with_the_wall_clock(start_camera: StartCamera) -> None:
    camera = start_camera(overlay_time=True)

    with open_rtsp(camera.url) as container:
        stamps: list[float] = []
        for frame in container.decode(container.streams.video[0]):
            stamp = read_frame_timestamp(frame)
            assert stamp is not None, "no timestamp strip in the frame"
            stamps.append(stamp)
            if len(stamps) == 8:
                break
        received = time.time()

    # Frames buffered while the stream opened arrive in a burst, so only bound the age.
    assert 0 <= received - stamps[-1] < 3
    intervals = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(interval > 0 for interval in intervals)
    # Median, not each: the first frame leaves as the pipeline starts, off the 1/fps grid.
    assert statistics.median(intervals) == pytest.approx(1 / 15, abs=0.005)


def test_start_reports_the_server_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        camera = TestCamera(port=taken.getsockname()[1])

        with pytest.raises(CameraStartError, match="cannot listen"):
            camera.start()

    assert not camera.running
