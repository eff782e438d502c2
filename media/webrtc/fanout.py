"""Fan-out of one stream's packets to every WebRTC consumer of that stream.

One `Fanout` per stream. The ingest calls `on_packet()` for each access unit, from its own
thread or from the loop. Each packet is packetized into RTP payloads **once**, here
(`RtpFrame`), and the same frame goes to every consumer's `PacketTrack`, which sends it in
the same event-loop turn through its `LeanSender` (per viewer: RTP header, SRTP, sendto).
A slow consumer drops to a keyframe on its own without holding the others back. A new
consumer starts with the GOP cache's snapshot, so its first frame does not wait for the
camera's next keyframe (PLI cannot ask an RTSP camera for one: it is answered from the
GOP cache too). The packetized frames of the current GOP are kept so that neither a
new consumer nor a PLI packetizes them again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol

from media.webrtc.packet_track import PacketKey, PacketTrack, packet_key
from media.webrtc.rtp_frame import (
    AUDIO_CLOCK_RATE,
    VIDEO_CLOCK_RATE,
    Packetizer,
    RtpFrame,
    packetize_h264,
    packetize_whole,
    to_clock,
)

if TYPE_CHECKING:
    from media.packet import MediaPacket

logger = logging.getLogger(__name__)

# About 8 s of 30 fps video on top of the GOP-cache burst.
DEFAULT_QUEUE_SIZE = 256
# Packets handed from the ingest thread to the loop and not yet dispatched (the loop's
# ready queue is unbounded): beyond this the hand-off drops to the next keyframe.
HANDOFF_LIMIT = 256


class SnapshotSource(Protocol):
    """What the fan-out needs from `media.gop_cache.GopCache`."""

    def snapshot(self) -> list[MediaPacket]:
        """Packets from the latest keyframe on, oldest first."""
        ...


class Fanout:
    """Distributes a stream's packets to per-consumer tracks.

    Build it on the media loop. Feed the GOP cache *before* calling `on_packet()` with
    the same packet: a consumer that subscribes in between then finds the packet in the
    snapshot, and the track skips its live copy instead of missing it.
    """

    def __init__(
        self,
        gop_cache: SnapshotSource | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        name: str = "",
        kind: str = "video",
        packetize: Packetizer | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._gop_cache = gop_cache
        self._queue_size = queue_size
        self._name = name
        self._tracks: set[PacketTrack] = set()
        #: "video" (H.264 by default) or "audio" (one payload per frame by default).
        self.kind = kind
        self._clock_rate = VIDEO_CLOCK_RATE if kind == "video" else AUDIO_CLOCK_RATE
        self._packetize = packetize or (packetize_h264 if kind == "video" else packetize_whole)
        # The packetized frames of the current GOP, by packet identity.
        self._gop_frames: dict[PacketKey, RtpFrame] = {}
        self._closed = False
        #: Packets received from the ingest.
        self.packets_in = 0
        # Counts of consumers that left, so totals never go backwards.
        self._left_sent = 0
        self._left_dropped = 0
        # Bounded hand-off: each counter is written by one thread only.
        self._handed = 0  # ingest thread
        self._dispatched = 0  # loop
        self._handoff_dropping = False
        #: Packets dropped at the hand-off because the loop fell behind.
        self.handoff_dropped = 0

    @property
    def consumers(self) -> int:
        """Number of subscribed tracks."""
        return len(self._tracks)

    def on_packet(self, pkt: MediaPacket) -> None:
        """Hand a packet to every consumer; safe to call from any thread."""
        if self._closed:
            return
        if not self._tracks:
            # Nobody to send to: do not wake the loop. A consumer subscribing right now
            # still gets this packet, from the GOP cache that was fed before us.
            self.packets_in += 1
            return
        if threading.get_ident() == self._loop_thread:
            self._dispatch(pkt)
            return
        if self._handoff_full(pkt.is_keyframe):
            self.handoff_dropped += 1
            return
        self._handed += 1
        try:
            self._loop.call_soon_threadsafe(self._dispatch_handed, pkt)
        except RuntimeError:
            # The loop is closed: the media node is shutting down.
            self._closed = True

    def _handoff_full(self, is_keyframe: bool) -> bool:
        """Past HANDOFF_LIMIT pending, drop until a keyframe finds room (decodable again)."""
        if self._handed - self._dispatched >= HANDOFF_LIMIT:
            self._handoff_dropping = True
        elif self._handoff_dropping and is_keyframe:
            self._handoff_dropping = False
        return self._handoff_dropping

    def _dispatch_handed(self, pkt: MediaPacket) -> None:
        self._dispatched += 1
        self._dispatch(pkt)

    def _dispatch(self, pkt: MediaPacket) -> None:
        self.packets_in += 1
        if not self._tracks or self._closed:
            return
        key = packet_key(pkt)
        frame = self._gop_frames.get(key) or self._frame(pkt)
        if pkt.is_keyframe:
            self._gop_frames = {}
        self._gop_frames[key] = frame
        # One frame for all consumers (each adds only its RTP headers); the consumers
        # send it now, so the whole fan-out of a packet is this one loop callback.
        for track in tuple(self._tracks):
            track.push(pkt, frame)

    def _frame(self, pkt: MediaPacket) -> RtpFrame:
        return RtpFrame(pkt.data, self._packetize(pkt.data),
                        to_clock(pkt.pts, pkt.time_base, self._clock_rate),
                        pkt.is_keyframe, self.kind == "video")

    def snapshot_frames(self) -> list[tuple[PacketKey, RtpFrame]]:
        """The GOP cache's snapshot, packetized (each packet once per GOP)."""
        if self._gop_cache is None:
            return []
        cached = self._gop_frames
        frames = [(k, cached.get(k) or self._frame(p))
                  for p in self._gop_cache.snapshot() for k in (packet_key(p),)]
        self._gop_frames = dict(frames)
        return frames

    def subscribe(self, *, queue_size: int | None = None) -> PacketTrack:
        """A new consumer track, primed with the GOP cache; call on the loop."""
        if self._closed:
            raise RuntimeError("the fan-out is closed")
        track = PacketTrack(queue_size or self._queue_size, on_stop=self._unsubscribe,
                            snapshot=self.snapshot_frames, kind=self.kind,
                            clock_rate=self._clock_rate)
        if self._gop_cache is not None:
            track.prime(self.snapshot_frames())
        self._tracks.add(track)
        logger.debug(
            "%s: consumer %s subscribed (%d primed, %d consumers)",
            self._name,
            track.id,
            track.primed_packets,
            len(self._tracks),
        )
        return track

    def _unsubscribe(self, track: PacketTrack) -> None:
        if track in self._tracks:
            self._tracks.discard(track)
            self._left_sent += track.sent_packets
            self._left_dropped += track.dropped_packets

    def totals(self) -> tuple[int, int]:
        """(packets sent, packets dropped) to every consumer this fan-out ever had."""
        tracks = list(self._tracks)
        return (self._left_sent + sum(t.sent_packets for t in tracks),
                self._left_dropped + sum(t.dropped_packets for t in tracks))

    def stats(self) -> dict[str, Any]:
        """Counters of the fan-out and of each consumer."""
        return {
            "packets_in": self.packets_in,
            "consumers": [
                {
                    "track": t.id,
                    "queued": t.queued,
                    "sent": t.sent_packets,
                    "dropped": t.dropped_packets,
                    "overflows": t.overflows,
                }
                for t in self._tracks
            ],
        }

    def close(self) -> None:
        """Stop every track (their senders end) and ignore later packets; on the loop."""
        self._closed = True
        for track in tuple(self._tracks):
            track.stop()
        self._tracks.clear()
        self._gop_frames = {}
