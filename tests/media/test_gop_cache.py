"""GopCache: last keyframe and what follows, reset per GOP, bounded."""

from __future__ import annotations

import threading
from fractions import Fraction

import pytest

from media.gop_cache import GopCache
from media.packet import MediaPacket

TB = Fraction(1, 90000)


def packet(index: int, keyframe: bool = False, size: int = 100) -> MediaPacket:
    return MediaPacket(
        data=bytes(size),
        pts=index * 3000,
        dts=index * 3000,
        time_base=TB,
        is_keyframe=keyframe,
        wallclock=1000.0 + index / 30,
    )


def test_starts_at_keyframe_and_resets_on_the_next() -> None:
    cache = GopCache()
    cache.add(packet(0))  # before any keyframe: useless to a new consumer
    assert cache.snapshot() == []
    gop1 = [packet(1, keyframe=True), packet(2), packet(3)]
    for item in gop1:
        cache.add(item)
    assert cache.snapshot() == gop1
    gop2 = [packet(4, keyframe=True), packet(5)]
    for item in gop2:
        cache.on_packet(item)  # the sink interface
    assert cache.snapshot() == gop2
    assert cache.size_bytes == 200 and len(cache) == 2


def test_snapshot_is_a_copy() -> None:
    cache = GopCache()
    cache.add(packet(0, keyframe=True))
    snapshot = cache.snapshot()
    cache.add(packet(1))
    assert len(snapshot) == 1 and len(cache.snapshot()) == 2


@pytest.mark.parametrize(("max_bytes", "max_packets"), [(550, 100), (10_000, 5)])
def test_gop_over_the_bound_is_dropped_until_next_keyframe(
    max_bytes: int, max_packets: int
) -> None:
    cache = GopCache(max_bytes=max_bytes, max_packets=max_packets)
    cache.add(packet(0, keyframe=True))
    for index in range(1, 5):
        cache.add(packet(index))
    assert len(cache) == 5
    cache.add(packet(5))  # sixth packet: 600 bytes / 6 packets, over either bound
    assert cache.snapshot() == [] and cache.overflows == 1
    cache.add(packet(6))  # the rest of that GOP is not cached either
    assert cache.snapshot() == []
    cache.add(packet(7, keyframe=True))
    assert [p.pts for p in cache.snapshot()] == [7 * 3000]


def test_clear() -> None:
    cache = GopCache()
    cache.add(packet(0, keyframe=True))
    cache.clear()
    assert cache.snapshot() == [] and cache.size_bytes == 0


def test_concurrent_writer_and_readers_see_whole_gops() -> None:
    cache = GopCache()
    done = threading.Event()
    bad: list[list[MediaPacket]] = []

    def writer() -> None:
        for index in range(3000):
            cache.add(packet(index, keyframe=index % 30 == 0, size=10))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        snapshot = cache.snapshot()
        if snapshot and not snapshot[0].is_keyframe:
            bad.append(snapshot)
    thread.join()
    assert not bad
    assert len(cache.snapshot()) == 30


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        GopCache(max_bytes=0)
