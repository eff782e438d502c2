"""FrameSampler on real H.264 clips that the test encodes with libx264.

Each frame of a clip shows a white block whose x position encodes the frame's index, so a
sample can be checked to be the frame at its own time (a P-frame decoded through its chain,
not a stale keyframe).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from media.detection.sampler import FrameSampler
from media.packet import MediaPacket
from tests.media.detection.scenes import background, video_packets, write_clip

FPS = 15
WIDTH, HEIGHT = 640, 360
STEP = 6  # block x = (index % CYCLE) * STEP
CYCLE = 90
SECONDS = 10


def frame_index_in(image: np.ndarray) -> int:
    """The frame index painted into ``image`` (at the sampler's output scale)."""
    row = image[image.shape[0] // 2, :, :].mean(axis=1)
    bright = np.flatnonzero(row > 220)
    scale = WIDTH / image.shape[1]
    return round(bright[0] * scale / STEP)


def expected_index(seconds: float) -> int:
    return round(seconds * FPS) % CYCLE


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """10 s clips at 15 fps with GOPs of 15 frames (1 s), 30 (2 s) and 45 (3 s)."""
    still = background(WIDTH, HEIGHT)
    frames = []
    for index in range(SECONDS * FPS):
        frame = still.copy()
        x = index % CYCLE * STEP
        frame[HEIGHT // 2 - 30 : HEIGHT // 2 + 30, x : x + 24] = 255
        frames.append(frame)
    directory = tmp_path_factory.mktemp("clips")
    paths = {}
    for gop in (15, 30, 45):
        paths[gop] = directory / f"gop{gop}.ts"
        write_clip(paths[gop], frames, FPS, gop)
    return paths


def run(sampler: FrameSampler, path: Path) -> list:
    packets = video_packets(path)
    start = packets[0].pts * packets[0].time_base
    samples = [s for s in map(sampler.feed, packets) if s is not None]
    for sample in samples:
        # Each sample is the frame of its own time.
        assert frame_index_in(sample.image) == expected_index(sample.time - float(start))
    return [round(s.time - float(start), 3) for s in samples]


def test_gop_equal_to_interval_decodes_keyframes_only(clips: dict[int, Path]) -> None:
    sampler = FrameSampler(interval=1.0, width=320)
    times = run(sampler, clips[15])
    assert times == [float(second) for second in range(SECONDS)]
    assert sampler.gop == pytest.approx(1.0)
    # The first GOP is decoded whole (the GOP is not known before the second keyframe);
    # after that, one keyframe per sample and nothing else.
    assert sampler.stats.decoded == FPS + SECONDS - 1
    assert sampler.stats.packets == SECONDS * FPS


def test_gop_longer_than_interval_decodes_up_to_the_last_sample_of_each_gop(
    clips: dict[int, Path],
) -> None:
    sampler = FrameSampler(interval=1.0, width=320)
    times = run(sampler, clips[45])
    assert times == [float(second) for second in range(SECONDS)]
    # GOP 3 s: per GOP the frames up to the 2 s sample (31 of 45) are decoded, the rest
    # skipped; the first GOP is decoded whole, and the last (1 s long) to its end.
    assert sampler.stats.decoded == 45 + 31 + 31 + 15


def test_half_second_interval_on_a_one_second_gop(clips: dict[int, Path]) -> None:
    sampler = FrameSampler(interval=0.5, width=320)
    times = run(sampler, clips[15])
    # 0.5 s is 7.5 frames: the mid-GOP samples land on frame 8 (0.533 s), on the grid.
    assert times == [t + half for t in range(SECONDS) for half in (0.0, 0.533)]
    assert all(b - a >= 0.5 - 1 / FPS for a, b in itertools.pairwise(times))
    # Frames 9..14 of each GOP (after the mid-GOP sample) are never decoded.
    assert sampler.stats.decoded == FPS + (SECONDS - 1) * 9


def test_interval_longer_than_gop_samples_keyframes(clips: dict[int, Path]) -> None:
    sampler = FrameSampler(interval=2.0, width=320)
    assert run(sampler, clips[15]) == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert sampler.stats.decoded == FPS + 4


def test_max_lateness_waits_for_the_next_keyframe(clips: dict[int, Path]) -> None:
    # GOP 2 s, interval 1.5 s. Strict: the frames between keyframes are decoded for every
    # sample on time.
    strict = FrameSampler(interval=1.5, width=320, max_lateness=0.0)
    assert run(strict, clips[30]) == [0.0, 1.533, 3.0, 4.533, 6.0, 7.533, 9.0]
    # With 0.5 s of lateness allowed, a keyframe serves a sample whenever it is at most
    # 0.5 s late: the one due at 7.5 s waits for the keyframe at 8 s. (Until the second
    # keyframe the sampler does not know the GOP and samples on time.)
    lenient = FrameSampler(interval=1.5, width=320, max_lateness=0.5)
    assert run(lenient, clips[30]) == [0.0, 1.533, 3.0, 4.533, 6.0, 8.0]
    assert lenient.stats.decoded < strict.stats.decoded


def test_media_packets_and_a_new_connection(clips: dict[int, Path]) -> None:
    packets = [
        MediaPacket.from_av(p, wallclock=1000.0 + i) for i, p in enumerate(video_packets(clips[15]))
    ]
    sampler = FrameSampler(interval=1.0)
    samples = [s for s in map(sampler.feed, packets) if s is not None]
    assert len(samples) == SECONDS
    assert samples[0].image.shape == (360, 640, 3)  # never upscaled past the source
    assert samples[0].source_size == (640, 360)
    assert samples[1].wallclock == 1000.0 + FPS
    # A reconnect: timestamps start over; the sampler takes the first keyframe at once.
    again = [p if i else _discontinuous(p) for i, p in enumerate(packets[:20])]
    restarted = [s for s in map(sampler.feed, again) if s is not None]
    assert len(restarted) == 2


def test_packets_without_timestamps_are_skipped(clips: dict[int, Path]) -> None:
    packets = video_packets(clips[15])
    first = packets[0]
    first.pts = None
    sampler = FrameSampler(interval=1.0)
    assert sampler.feed(first) is None
    assert sampler.stats.packets == 0


def _discontinuous(packet: MediaPacket) -> MediaPacket:
    from dataclasses import replace

    return replace(packet, discontinuity=True)
