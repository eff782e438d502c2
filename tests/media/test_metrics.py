"""IngestMetrics with a controlled clock: bitrate, fps, jitter, loss, uptime."""

from __future__ import annotations

from fractions import Fraction

import pytest

from media.metrics import IngestMetrics
from media.packet import MediaPacket

TB = Fraction(1, 90000)
FRAME = 3000  # 30 fps in 90 kHz ticks


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def packet(ticks: int, size: int = 1000, keyframe: bool = False) -> MediaPacket:
    return MediaPacket(
        data=bytes(size),
        pts=ticks,
        dts=ticks,
        time_base=TB,
        is_keyframe=keyframe,
        wallclock=1_700_000_000.0 + ticks / 90000,
    )


def feed(metrics: IngestMetrics, clock: Clock, frames: list[int], arrivals: list[float],
         gop: int = 0) -> None:
    for frame, arrival in zip(frames, arrivals, strict=True):
        clock.now = arrival
        keyframe = gop > 0 and frame % gop == 0
        metrics.on_packet(packet(frame * FRAME, keyframe=keyframe), arrival)


def test_steady_stream() -> None:
    clock = Clock()
    metrics = IngestMetrics(window=5.0, clock=clock)
    metrics.set_frame_rate(30)
    metrics.on_live()
    feed(metrics, clock, list(range(300)), [100.0 + i / 30 for i in range(300)], gop=60)
    stats = metrics.stats()
    assert stats.fps == pytest.approx(30, rel=0.02)
    assert stats.bitrate_kbps == pytest.approx(30 * 1000 * 8 / 1000, rel=0.02)  # 240 kbit/s
    assert stats.jitter_ms == pytest.approx(0, abs=1e-6)
    assert stats.packet_loss == 0
    assert stats.uptime_seconds == pytest.approx(300 / 30 - 1 / 30)
    assert stats.packets_total == 300 and stats.bytes_total == 300_000
    assert stats.keyframes_total == 5  # one every 60 frames
    assert stats.last_packet_at is not None and stats.last_packet_at.tzinfo is not None


def test_window_not_yet_full_after_connecting() -> None:
    clock = Clock()
    metrics = IngestMetrics(window=5.0, clock=clock)
    metrics.on_live()
    feed(metrics, clock, list(range(30)), [100.0 + i / 30 for i in range(30)])
    clock.now = 101.0
    assert metrics.stats().fps == pytest.approx(30, rel=0.05)  # not 30 / 5


def test_jitter_follows_rfc3550() -> None:
    clock = Clock()
    metrics = IngestMetrics(clock=clock)
    metrics.on_live()
    # Every other frame arrives 10 ms late: |D| alternates 10 ms, 10 ms (late, then early).
    arrivals = [100.0 + i / 30 + (0.010 if i % 2 else 0.0) for i in range(200)]
    feed(metrics, clock, list(range(200)), arrivals)
    expected = 0.0
    for _ in range(199):
        expected += (0.010 - expected) / 16
    assert metrics.stats().jitter_ms == pytest.approx(expected * 1000, rel=1e-6)


def test_loss_estimated_from_timestamp_gaps() -> None:
    clock = Clock()
    metrics = IngestMetrics(window=10.0, clock=clock)
    metrics.set_frame_rate(30)
    metrics.on_live()
    frames = [i for i in range(100) if i % 10 != 5]  # every tenth frame missing
    feed(metrics, clock, frames, [100.0 + f / 30 for f in frames])
    assert metrics.stats().packet_loss == pytest.approx(10 / 100)


def test_loss_learns_frame_duration_when_rate_unknown() -> None:
    clock = Clock()
    metrics = IngestMetrics(window=10.0, clock=clock)
    metrics.on_live()
    frames = [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]  # frame 3 missing
    feed(metrics, clock, frames, [100.0 + f / 30 for f in frames])
    assert metrics.stats().packet_loss == pytest.approx(1 / 11)


def test_restart_and_big_jumps_are_not_loss() -> None:
    clock = Clock()
    metrics = IngestMetrics(window=60.0, clock=clock)
    metrics.set_frame_rate(30)
    metrics.on_live()
    feed(metrics, clock, list(range(10)), [100.0 + i / 30 for i in range(10)])
    metrics.on_down("source dropped")
    assert metrics.stats().uptime_seconds == 0
    metrics.on_live()
    # Timestamps start over after reconnecting: not loss, not jitter.
    feed(metrics, clock, list(range(10)), [103.0 + i / 30 for i in range(10)])
    feed(metrics, clock, [100_000], [104.0])  # a jump of ~55 min: discontinuity
    stats = metrics.stats()
    assert stats.packet_loss == 0
    assert stats.jitter_ms == pytest.approx(0, abs=1e-6)
    assert stats.last_error == "source dropped"
    assert stats.reconnects == 1


def test_rates_decay_when_packets_stop() -> None:
    clock = Clock()
    metrics = IngestMetrics(window=5.0, clock=clock)
    metrics.on_live()
    feed(metrics, clock, list(range(30)), [100.0 + i / 30 for i in range(30)])
    clock.now = 110.0
    stats = metrics.stats()
    assert stats.fps == 0 and stats.bitrate_kbps == 0
