"""Fan-out and per-consumer tracks: GOP priming, monotonic timestamps, overflow policy."""

from __future__ import annotations

import asyncio
import threading
from fractions import Fraction
from typing import Any

import av
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamError

from media.gop_cache import GopCache
from media.packet import MediaPacket
from media.webrtc.fanout import Fanout
from media.webrtc.packet_track import BURST_CHUNK_BYTES, PRIMED_FRAME_STEP, PacketTrack

pytestmark = pytest.mark.asyncio

TB = Fraction(1, 90000)


def packet(n: int, *, keyframe: bool = False, pts: int | None = None) -> MediaPacket:
    """A fake access unit numbered n (its payload names it), 30 fps."""
    return MediaPacket(
        data=b"\x00\x00\x00\x01" + bytes([0x65 if keyframe else 0x41]) + n.to_bytes(4, "big"),
        pts=3000 * n if pts is None else pts,
        dts=None,
        time_base=TB,
        is_keyframe=keyframe,
        wallclock=1000.0 + n,
    )


def number(av_packet: Any) -> int:
    return int.from_bytes(bytes(av_packet)[5:9], "big")


def feed(fanout: Fanout, cache: GopCache | None, packets: list[MediaPacket]) -> None:
    for p in packets:
        if cache is not None:
            cache.add(p)
        fanout.on_packet(p)


async def drain(track: PacketTrack) -> list[Any]:
    out = []
    while track.queued:
        out.append(await track.recv())
    return out


def gop(start: int, length: int = 10) -> list[MediaPacket]:
    return [packet(start + i, keyframe=i == 0) for i in range(length)]


async def test_a_new_consumer_starts_with_the_cached_gop_then_live_packets() -> None:
    cache = GopCache()
    fanout = Fanout(cache)
    feed(fanout, cache, gop(0) + gop(10)[:5])  # the camera is 5 frames into its 2nd GOP
    track = fanout.subscribe()
    primed = await drain(track)
    assert [number(p) for p in primed] == [10, 11, 12, 13, 14]
    assert primed[0].is_keyframe and track.primed_packets == 5
    # The burst is squeezed to end at the last cached frame's own timestamp.
    assert [p.pts for p in primed] == [3000 * 14 - PRIMED_FRAME_STEP * k for k in (4, 3, 2, 1, 0)]
    assert all(p.payloads for p in primed)  # packetized, on the 90 kHz clock

    feed(fanout, cache, gop(10)[5:])
    live = await drain(track)
    assert [number(p) for p in live] == [15, 16, 17, 18, 19]
    assert [p.pts for p in live] == [3000 * n for n in range(15, 20)]


async def test_packets_still_on_their_way_are_not_sent_twice() -> None:
    # The ingest thread has put packets in the cache whose dispatch is still queued.
    cache = GopCache()
    fanout = Fanout(cache)
    pending = gop(0, 6)
    for p in pending:
        cache.add(p)
    track = fanout.subscribe()
    for p in pending:  # now the queued dispatches run
        fanout.on_packet(p)
    fanout.on_packet(packet(6))
    assert [number(p) for p in await drain(track)] == [0, 1, 2, 3, 4, 5, 6]


async def test_without_a_cache_a_consumer_waits_for_a_keyframe() -> None:
    fanout = Fanout(None)
    track = fanout.subscribe()
    feed(fanout, None, gop(0)[3:] + gop(10)[:2])
    assert [number(p) for p in await drain(track)] == [10, 11]
    assert track.dropped_packets == 7


async def test_timestamps_stay_monotonic_when_the_source_restarts() -> None:
    fanout = Fanout(None)
    track = fanout.subscribe()
    feed(fanout, None, gop(100, 3))
    # The ingest reconnected: its timeline starts again at 0.
    feed(fanout, None, [packet(0, keyframe=True, pts=0), packet(1, pts=3000)])
    pts = [p.pts for p in await drain(track)]
    assert pts == sorted(set(pts))
    assert pts[4] - pts[3] == 3000  # the source's spacing is kept after the shift


async def test_overflow_drops_to_the_newest_queued_keyframe() -> None:
    fanout = Fanout(None)
    slow = fanout.subscribe(queue_size=8)
    other = fanout.subscribe(queue_size=100)
    feed(fanout, None, gop(0, 5) + gop(5, 3))  # 8 queued: the limit
    feed(fanout, None, [packet(8)])  # overflow: restart at keyframe 5
    assert slow.overflows == 1 and slow.dropped_packets == 5
    assert [number(p) for p in await drain(slow)] == [5, 6, 7, 8]
    # The other consumer lost nothing.
    assert [number(p) for p in await drain(other)] == list(range(9))
    assert other.overflows == other.dropped_packets == 0


async def test_overflow_without_a_queued_keyframe_waits_for_the_next() -> None:
    fanout = Fanout(None)
    slow = fanout.subscribe(queue_size=4)
    feed(fanout, None, gop(0, 6))  # keyframe 0 at the head, then 1..3: full at 4
    assert slow.overflows == 1 and slow.queued == 0  # 4 overflowed, 5 waits for a keyframe
    feed(fanout, None, [packet(6), packet(7, keyframe=True), packet(8)])
    assert [number(p) for p in await drain(slow)] == [7, 8]
    assert slow.dropped_packets == 7


async def test_a_keyframe_arriving_on_overflow_replaces_the_queue() -> None:
    fanout = Fanout(None)
    slow = fanout.subscribe(queue_size=4)
    feed(fanout, None, [*gop(0, 4), packet(4, keyframe=True), packet(5)])
    assert [number(p) for p in await drain(slow)] == [4, 5]


async def test_on_packet_from_another_thread() -> None:
    fanout = Fanout(None)
    track = fanout.subscribe()
    thread = threading.Thread(target=feed, args=(fanout, None, gop(0, 30)))
    thread.start()
    got = [number(await asyncio.wait_for(track.recv(), 2)) for _ in range(30)]
    thread.join()
    assert got == list(range(30))


async def test_stopping_a_track_ends_recv_and_unsubscribes() -> None:
    fanout = Fanout(None)
    track = fanout.subscribe()
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiting
    assert fanout.consumers == 0
    fanout.close()
    fanout.on_packet(packet(0, keyframe=True))  # ignored once closed


async def test_frames_are_packetized_once_as_aiortcs_h264_packetizer_does() -> None:
    fanout = Fanout(None)
    tracks = [fanout.subscribe(), fanout.subscribe()]
    nal = b"\x00\x00\x00\x01\x65" + bytes(3000)  # larger than one RTP payload
    fanout.on_packet(
        MediaPacket(nal, pts=7, dts=None, time_base=Fraction(1, 30), is_keyframe=True, wallclock=0)
    )
    frames = [await t.recv() for t in tracks]
    av_packet = av.Packet(nal)
    av_packet.pts, av_packet.time_base = 7, Fraction(1, 30)
    payloads, timestamp = H264Encoder().pack(av_packet)
    assert frames[0].pts == timestamp == 7 * 3000  # converted to the 90 kHz clock
    assert frames[0].payloads == payloads
    assert len(payloads) == 3 and all(len(p) <= 1300 for p in payloads)
    assert frames[0] is frames[1]  # one frame for every consumer on the source's timeline


class RecordingSink:
    """Stands in for a LeanSender: records frames, refuses them while `backed_up`."""

    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.backed_up = False

    def send_frame(self, frame: Any) -> bool:
        if self.backed_up:
            return False
        self.frames.append(frame)
        return True


async def test_attach_flushes_the_burst_then_sends_live_frames_at_once() -> None:
    cache = GopCache()
    fanout = Fanout(cache)
    feed(fanout, cache, gop(0, 5))
    track = fanout.subscribe()
    sink = RecordingSink()
    track.attach(sink)
    assert [number(f) for f in sink.frames] == [0, 1, 2, 3, 4] and track.queued == 0
    feed(fanout, cache, [packet(5)])
    assert [number(f) for f in sink.frames][-1] == 5  # in the same call, no queue
    assert track.sent_packets == 6


async def test_a_long_burst_goes_out_a_chunk_per_loop_turn_in_order() -> None:
    """A GOP-cache burst larger than a chunk does not hold the loop: the keyframe goes at
    once, the rest over the next loop turns, and a live frame arriving meanwhile follows
    the burst instead of overtaking it."""
    cache = GopCache()
    fanout = Fanout(cache)
    big = [MediaPacket(data=p.data + b"\xff" * 20000, pts=p.pts, dts=None, time_base=TB,
                       is_keyframe=p.is_keyframe, wallclock=p.wallclock) for p in gop(0, 20)]
    feed(fanout, cache, big)
    track = fanout.subscribe()
    sink = RecordingSink()
    track.attach(sink)
    first_turn = [number(f) for f in sink.frames]
    assert first_turn[0] == 0 and len(first_turn) < 20
    assert len(first_turn) * 20000 <= BURST_CHUNK_BYTES + 20010
    feed(fanout, cache, [packet(20)])
    assert number(sink.frames[-1]) != 20
    for _ in range(40):
        await asyncio.sleep(0)
    assert [number(f) for f in sink.frames] == list(range(21)) and track.queued == 0


async def test_a_backed_up_socket_skips_to_the_next_keyframe() -> None:
    fanout = Fanout(None)
    track = fanout.subscribe()
    sink = RecordingSink()
    track.attach(sink)
    feed(fanout, None, gop(0, 4))
    sink.backed_up = True
    feed(fanout, None, [packet(4)])
    sink.backed_up = False
    feed(fanout, None, [packet(5), packet(6)])  # would reference the lost frame 4
    feed(fanout, None, gop(10, 2))
    assert [number(f) for f in sink.frames] == [0, 1, 2, 3, 10, 11]
    assert track.overflows == 1
    assert track.dropped_packets == 3


async def test_a_keyframe_request_resends_the_cached_gop_after_the_last_frame() -> None:
    cache = GopCache()
    fanout = Fanout(cache)
    track = fanout.subscribe()
    sink = RecordingSink()
    track.attach(sink)
    feed(fanout, cache, gop(0, 6))
    last = sink.frames[-1].pts
    assert track.request_keyframe()
    resent = sink.frames[6:]
    assert [number(f) for f in resent] == [0, 1, 2, 3, 4, 5]
    assert [f.pts for f in resent] == [last + PRIMED_FRAME_STEP * k for k in range(1, 7)]
    assert not track.request_keyframe()  # rate-limited
    feed(fanout, cache, [packet(6)])
    assert sink.frames[-1].pts > resent[-1].pts  # live frames stay monotonic
