"""One consumer's view of a stream: a bounded packet queue behind an aiortc track.

`RTCRtpSender` packetizes whatever its track's `recv()` returns; anything that is not an
`av.Frame` goes through `H264Encoder.pack()`, which needs an `av.Packet` with `pts` and
`time_base`. So this track yields `av.Packet`s carrying the camera's access units as they
are: nothing is decoded or re-encoded.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

if TYPE_CHECKING:
    from media.packet import MediaPacket

logger = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90000
VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)
# Spacing of the GOP-cache burst: 1 ms apart, so the receiver shows the cached frames at
# once instead of replaying the cached second or two at camera pace (which would delay
# every later frame by as much). Each frame still gets its own RTP timestamp, which
# receivers need to tell frames apart.
PRIMED_FRAME_STEP = VIDEO_CLOCK_RATE // 1000
# Step used when the source timeline goes backwards (an ingest restart).
FALLBACK_FRAME_STEP = VIDEO_CLOCK_RATE // 30

PacketKey = tuple[int, int | None, float, int]


def to_90khz(pts: int, time_base: Fraction) -> int:
    """`pts` in `time_base` units, converted to the 90 kHz RTP video clock."""
    if time_base == VIDEO_TIME_BASE:
        return pts
    return round(pts * time_base * VIDEO_CLOCK_RATE)


def make_av_packet(data: bytes, pts90: int, is_keyframe: bool) -> av.Packet[Any]:
    """An `av.Packet` that aiortc's H.264 packetizer accepts."""
    packet = av.Packet(data)
    packet.pts = pts90
    packet.time_base = VIDEO_TIME_BASE
    packet.is_keyframe = is_keyframe
    return packet


def packet_key(pkt: MediaPacket) -> PacketKey:
    """Identity of a packet that survives copies: timestamps, arrival time and size."""
    return (pkt.pts, pkt.dts, pkt.wallclock, len(pkt.data))


class PacketTrack(MediaStreamTrack):
    """A video track that yields forwarded H.264 `av.Packet`s from a bounded queue.

    Timestamps are rewritten per consumer so they stay monotonic: the GOP-cache burst is
    squeezed to end at the last cached frame's timestamp, live packets keep theirs, and a
    source timeline that jumps back is shifted forward. Assumes no B-frames, like WebRTC
    H.264 itself.

    When the queue is full the consumer is too slow: everything up to the newest queued
    keyframe is dropped, or, without one, everything up to the next keyframe, so that the
    decoder never sees a frame whose references are missing.
    """

    kind = "video"

    def __init__(self, capacity: int, on_stop: Callable[[PacketTrack], None] | None = None) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._limit = capacity
        self._on_stop = on_stop
        self._queue: deque[tuple[av.Packet[Any], bool]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._waiting_for_keyframe = True
        self._primed_keys: set[PacketKey] = set()
        self._offset = 0
        self._last_out: int | None = None
        #: Packets dropped because this consumer fell behind.
        self.dropped_packets = 0
        #: Times the queue overflowed.
        self.overflows = 0
        #: Packets handed to the sender.
        self.sent_packets = 0
        #: Packets queued from the GOP cache when the track started.
        self.primed_packets = 0

    @property
    def queued(self) -> int:
        """Packets waiting to be sent."""
        return len(self._queue)

    def prime(self, snapshot: Sequence[MediaPacket]) -> None:
        """Queue a GOP-cache snapshot (from its keyframe on) for immediate sending."""
        start = next((i for i, p in enumerate(snapshot) if p.is_keyframe), None)
        if start is None or self._last_out is not None:
            return
        packets = snapshot[start:]
        last = to_90khz(packets[-1].pts, packets[-1].time_base)
        count = len(packets)
        for i, pkt in enumerate(packets):
            pts90 = last - (count - 1 - i) * PRIMED_FRAME_STEP
            self._queue.append((make_av_packet(pkt.data, pts90, pkt.is_keyframe), pkt.is_keyframe))
        self._last_out = last
        self._waiting_for_keyframe = False
        # The snapshot may hold packets whose live dispatch is still queued on the loop.
        self._primed_keys = {packet_key(p) for p in packets}
        # The burst does not count against the room left for live packets.
        self._limit = self._capacity + count
        self.primed_packets = count
        self._wake()

    def push(self, pkt: MediaPacket, shared: av.Packet[Any], pts90: int) -> None:
        """Queue a live packet; `shared` is the packet built once for all consumers."""
        if self.readyState != "live":
            return
        if self._primed_keys:
            if packet_key(pkt) in self._primed_keys:
                return
            self._primed_keys.clear()
        if self._waiting_for_keyframe:
            if not pkt.is_keyframe:
                self.dropped_packets += 1
                return
            self._waiting_for_keyframe = False
        if len(self._queue) >= self._limit and not self._drop_to_keyframe(pkt.is_keyframe):
            return
        out = self._map(pts90)
        item = shared if out == pts90 else make_av_packet(pkt.data, out, pkt.is_keyframe)
        self._queue.append((item, pkt.is_keyframe))
        self._wake()

    def _drop_to_keyframe(self, incoming_is_keyframe: bool) -> bool:
        """Handle an overflow; return whether the incoming packet may be queued."""
        self.overflows += 1
        before = len(self._queue)
        newest = next((i for i in range(before - 1, 0, -1) if self._queue[i][1]), None)
        if newest is not None and not incoming_is_keyframe:
            for _ in range(newest):
                self._queue.popleft()
            accepted = True
        else:
            # No keyframe to restart from in the queue (or a fresher one arriving).
            self._queue.clear()
            accepted = incoming_is_keyframe
            self._waiting_for_keyframe = not incoming_is_keyframe
        self.dropped_packets += before - len(self._queue) + (0 if accepted else 1)
        self._limit = self._capacity
        logger.info(
            "consumer %s fell behind: dropped %d packets to a keyframe",
            self.id,
            before - len(self._queue),
        )
        return accepted

    def _map(self, pts90: int) -> int:
        out = pts90 + self._offset
        if self._last_out is not None and out <= self._last_out:
            self._offset += self._last_out + FALLBACK_FRAME_STEP - out
            out = self._last_out + FALLBACK_FRAME_STEP
        self._last_out = out
        return out

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> av.Packet[Any]:
        """The next packet to send; raises MediaStreamError once the track is stopped."""
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.readyState != "live":
            raise MediaStreamError
        packet, _ = self._queue.popleft()
        self.sent_packets += 1
        return packet

    def stop(self) -> None:
        """End the track: wake a pending `recv()` and detach from the fan-out."""
        if self.readyState == "live":
            super().stop()
            self._queue.clear()
            self._wake()
            if self._on_stop is not None:
                self._on_stop(self)
