"""One viewer's view of a stream: timestamps, keyframe policy and the hand-off to its sender.

The fan-out packetizes each packet once (`media.webrtc.rtp_frame`) and pushes the shared
`RtpFrame` into every viewer's `PacketTrack`. Until the viewer's sender runs (ICE and DTLS
take a few round trips) frames wait in a bounded queue, starting with the GOP cache's
snapshot; once `attach()`ed, the queue is flushed at once (the GOP-cache burst) and later
frames go straight to the sender in the same event-loop turn, with no task switch, no
`av.Packet` and no re-packetization per viewer.

It stays an aiortc `MediaStreamTrack` (its `recv()` yields the queued frames) because a
WHEP peer connection needs a track to negotiate a sending transceiver.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.webrtc.rtp_frame import VIDEO_CLOCK_RATE, RtpFrame

if TYPE_CHECKING:
    from media.packet import MediaPacket

logger = logging.getLogger(__name__)

VIDEO_TIME_BASE = Fraction(1, VIDEO_CLOCK_RATE)
# Spacing of the GOP-cache burst: 1 ms apart, so the receiver shows the cached frames at
# once instead of replaying the cached second or two at camera pace (which would delay
# every later frame by as much). Each frame still gets its own RTP timestamp, which
# receivers need to tell frames apart.
PRIMED_FRAME_STEP = VIDEO_CLOCK_RATE // 1000
# Step used when the source timeline goes backwards (an ingest restart).
FALLBACK_FRAME_STEP = VIDEO_CLOCK_RATE // 30
# The GOP-cache burst goes out this many bytes per event-loop turn (about a millisecond of
# the loop's time), then the loop serves whatever else is ready before the next chunk:
# sent in one turn, a 4 s GOP (~1 MB, ~800 packets) held every other viewer's ICE, DTLS
# and signalling of the node for tens of milliseconds, once per joining viewer.
BURST_CHUNK_BYTES = 64 * 1024
# A viewer's keyframe requests (PLI/FIR) are answered from the GOP cache at most this often:
# each answer resends up to a GOP, and a receiver repeats its request until it decodes.
KEYFRAME_ANSWER_INTERVAL_S = 1.0

PacketKey = tuple[int, int | None, float, int]
# The packetized GOP-cache snapshot, from its keyframe on (provided by the fan-out).
SnapshotFrames = Callable[[], list[tuple[PacketKey, RtpFrame]]]


class FrameSink(Protocol):
    """What a track hands frames to (`media.webrtc.lean_sender.LeanSender`)."""

    def send_frame(self, frame: RtpFrame) -> bool:
        """Send one frame now; False when the viewer's socket is backed up (not sent)."""
        ...


def packet_key(pkt: MediaPacket) -> PacketKey:
    """Identity of a packet that survives copies: timestamps, arrival time and size."""
    return (pkt.pts, pkt.dts, pkt.wallclock, len(pkt.data))


class PacketTrack(MediaStreamTrack):
    """A viewer's stream of `RtpFrame`s: bounded queue before the sender starts, direct after.

    Timestamps are rewritten per viewer so they stay monotonic: the GOP-cache burst is
    squeezed to end at the last cached frame's timestamp, live frames keep theirs, and a
    source timeline that jumps back is shifted forward. Assumes no B-frames, like WebRTC
    H.264 itself.

    When the queue is full (or the sender reports its socket backed up) the viewer is too
    slow: everything up to the newest queued keyframe is dropped, or, without one,
    everything up to the next keyframe, so that the decoder never sees a frame whose
    references are missing.
    """

    kind = "video"

    def __init__(
        self,
        capacity: int,
        on_stop: Callable[[PacketTrack], None] | None = None,
        *,
        snapshot: SnapshotFrames | None = None,
        kind: str = "video",
        clock_rate: int = VIDEO_CLOCK_RATE,
    ) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.kind = kind
        self._capacity = capacity
        self._limit = capacity
        self._on_stop = on_stop
        self._snapshot = snapshot
        self._primed_step = max(1, clock_rate // 1000)
        self._fallback_step = max(1, clock_rate // 30)
        self._queue: deque[RtpFrame] = deque()
        self._sink: FrameSink | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._waiting_for_keyframe = True
        self._primed_keys: set[PacketKey] = set()
        self._offset = 0
        self._last_out: int | None = None
        self._last_keyframe_answer = -KEYFRAME_ANSWER_INTERVAL_S
        #: Packets dropped because this consumer fell behind.
        self.dropped_packets = 0
        #: Times the queue overflowed (or the socket was backed up).
        self.overflows = 0
        #: Packets handed to the sender.
        self.sent_packets = 0
        #: Packets queued from the GOP cache when the track started.
        self.primed_packets = 0
        #: Keyframe requests answered from the GOP cache.
        self.keyframe_answers = 0

    @property
    def queued(self) -> int:
        """Frames waiting for the sender to start."""
        return len(self._queue)

    # GOP cache

    def prime(self, snapshot: Sequence[tuple[PacketKey, RtpFrame]]) -> None:
        """Queue a packetized GOP-cache snapshot (keyframe first) for immediate sending."""
        start = next((i for i, (_, f) in enumerate(snapshot) if f.is_keyframe), None)
        if start is None or self._last_out is not None:
            return
        entries = snapshot[start:]
        last = entries[-1][1].pts
        count = len(entries)
        for i, (_, frame) in enumerate(entries):
            self._queue.append(frame.retimed(last - (count - 1 - i) * self._primed_step))
        self._last_out = last
        self._waiting_for_keyframe = False
        # The snapshot may hold packets whose live dispatch is still queued on the loop.
        self._primed_keys = {key for key, _ in entries}
        # The burst does not count against the room left for live packets.
        self._limit = self._capacity + count
        self.primed_packets = count
        self._wake()

    def request_keyframe(self) -> bool:
        """Answer a viewer's PLI/FIR: resend the GOP cache from its keyframe, as a burst
        after the frames already sent (the camera cannot be asked for a keyframe).

        Rate-limited; False when not answered (too soon, no sender yet, nothing cached).
        """
        now = time.monotonic()
        if (
            self._sink is None
            or self._snapshot is None
            or self.readyState != "live"
            or now - self._last_keyframe_answer < KEYFRAME_ANSWER_INTERVAL_S
        ):
            return False
        entries = self._snapshot()
        start = next((i for i, (_, f) in enumerate(entries) if f.is_keyframe), None)
        if start is None:
            return False
        self._last_keyframe_answer = now
        entries = entries[start:]
        base = self._last_out if self._last_out is not None else entries[0][1].pts
        for i, (_, frame) in enumerate(entries, start=1):
            self._deliver(frame.retimed(base + i * self._primed_step))
        self._last_out = base + len(entries) * self._primed_step
        self._waiting_for_keyframe = False
        self._primed_keys = {key for key, _ in entries}
        self.keyframe_answers += 1
        return True

    # live frames

    def push(self, pkt: MediaPacket, frame: RtpFrame) -> None:
        """Queue or send a live frame; `frame` is the one built for all viewers."""
        if self.readyState != "live":
            return
        if self._primed_keys:
            if packet_key(pkt) in self._primed_keys:
                return
            self._primed_keys.clear()
        if self._waiting_for_keyframe:
            if not frame.is_keyframe:
                self.dropped_packets += 1
                return
            self._waiting_for_keyframe = False
        out = self._map(frame.pts)
        item = frame if out == frame.pts else frame.retimed(out)
        if self._sink is not None and not self._queue:
            self._deliver(item)
            return
        if len(self._queue) >= self._limit and not self._drop_to_keyframe(frame.is_keyframe):
            return
        self._queue.append(item)
        self._wake()

    def _deliver(self, frame: RtpFrame) -> None:
        assert self._sink is not None
        try:
            sent = self._sink.send_frame(frame)
        except Exception:
            # Never let one viewer's failure (libsrtp, say) stop the fan-out to the others.
            logger.exception("consumer %s: sending failed, ending it", self.id)
            self.stop()
            return
        if sent:
            self.sent_packets += 1
            return
        # The viewer's socket is backed up: skip to the next keyframe.
        self.overflows += 1
        self.dropped_packets += 1
        self._waiting_for_keyframe = not frame.is_keyframe
        if self.overflows == 1 or self.overflows % 100 == 0:
            logger.info("consumer %s fell behind: waiting for a keyframe (%d times)",
                        self.id, self.overflows)

    def _drop_to_keyframe(self, incoming_is_keyframe: bool) -> bool:
        """Handle an overflow; return whether the incoming packet may be queued."""
        self.overflows += 1
        before = len(self._queue)
        newest = next((i for i in range(before - 1, 0, -1) if self._queue[i].is_keyframe), None)
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

    def _map(self, pts: int) -> int:
        out = pts + self._offset
        if self._last_out is not None and out <= self._last_out:
            self._offset += self._last_out + self._fallback_step - out
            out = self._last_out + self._fallback_step
        self._last_out = out
        return out

    # the sender side

    def attach(self, sink: FrameSink) -> None:
        """Start sending: flush the queue (the GOP-cache burst) to `sink`, a chunk per
        loop turn, keyframe first; live frames queue behind it, then go direct."""
        if self.readyState != "live":
            return
        self._sink = sink
        self._flush(sink)

    def _flush(self, sink: FrameSink) -> None:
        budget = BURST_CHUNK_BYTES
        while self._queue and self._sink is sink and budget > 0:
            frame = self._queue.popleft()
            budget -= len(frame.data)
            self._deliver(frame)
        if self._queue and self._sink is sink:
            asyncio.get_running_loop().call_soon(self._flush, sink)

    def detach(self) -> None:
        """Stop handing frames to the sender (it stopped); frames queue again."""
        self._sink = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> RtpFrame:  # type: ignore[override]
        """The next queued frame (for a track read without a sender); raises
        MediaStreamError once the track is stopped."""
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
        frame = self._queue.popleft()
        self.sent_packets += 1
        return frame

    def stop(self) -> None:
        """End the track: wake a pending `recv()` and detach from the fan-out."""
        if self.readyState == "live":
            super().stop()
            self._queue.clear()
            self._sink = None
            self._wake()
            if self._on_stop is not None:
                self._on_stop(self)
