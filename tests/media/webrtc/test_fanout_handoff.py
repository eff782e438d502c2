"""The hand-off from the ingest thread to the media loop is bounded: while the loop is busy,
at most HANDOFF_LIMIT packets wait for it; beyond, the fan-out drops to the next keyframe
and counts every dropped packet."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from media.webrtc.fanout import HANDOFF_LIMIT, Fanout
from media.webrtc.packet_track import PacketTrack
from tests.media.webrtc.test_fanout import drain, feed, gop, number, packet


async def test_a_busy_loop_makes_the_handoff_drop_to_the_next_keyframe() -> None:
    fanout = Fanout(None)
    track = fanout.subscribe(queue_size=4 * HANDOFF_LIMIT)
    # The loop is held by this test while another thread feeds: nothing is dispatched.
    extra = 10
    burst = gop(0, HANDOFF_LIMIT + extra)
    thread = threading.Thread(target=feed, args=(fanout, None, burst))
    thread.start()
    thread.join()
    assert fanout.handoff_dropped == extra  # bounded, and every drop counted
    # Room again, but no keyframe yet: still dropping (a decoder needs a keyframe).
    after = HANDOFF_LIMIT + extra
    got = [number(p) for p in await drain_after_dispatch(track)]
    assert got == list(range(HANDOFF_LIMIT))
    thread = threading.Thread(target=feed, args=(fanout, None, [
        packet(after), packet(after + 1, keyframe=True), packet(after + 2)]))
    thread.start()
    thread.join()
    assert fanout.handoff_dropped == extra + 1
    assert [number(p) for p in await drain_after_dispatch(track)] == [after + 1, after + 2]


async def drain_after_dispatch(track: PacketTrack) -> list[Any]:
    """Let the loop run the handed-over callbacks, then take what reached the track."""
    for _ in range(3):
        await asyncio.sleep(0)
    return await drain(track)
