"""AudioFanout: a stream's Opus packets to every audio-taking WebRTC consumer.

A packet sink of the stream's ``OpusTranscoder`` (called on its thread). Each consumer gets
an ``AudioPacketTrack`` (an aiortc audio track whose ``recv()`` yields the Opus packets
as ``av.Packet``s, which aiortc's Opus encoder only packetizes) with a small queue of its
own: audio is never cached nor burst (a new consumer starts with the next 20 ms frame),
and a slow consumer loses its oldest frames, not the others'. ``on_count`` is told the
number of subscribed tracks at every change: the pipeline runs the transcoder while it
is above zero. Kept outside ``media.webrtc``: that package only sees a track source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.packet import MediaPacket

logger = logging.getLogger(__name__)

QUEUE_FRAMES = 25  # 0.5 s of 20 ms frames


class AudioPacketTrack(MediaStreamTrack):
    """One consumer's Opus packets."""

    kind = "audio"

    def __init__(self, fanout: AudioFanout) -> None:
        super().__init__()
        self._fanout = fanout
        self.owner_loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[MediaPacket] = asyncio.Queue(maxsize=QUEUE_FRAMES)
        self.sent = 0

    def push(self, packet: MediaPacket) -> None:
        """Queue a packet (event loop); the oldest goes when the queue is full."""
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
        self._queue.put_nowait(packet)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        self.sent += 1
        return packet.to_av()

    def stop(self) -> None:
        super().stop()
        self._fanout.unsubscribe(self)


class AudioFanout:
    """Opus packets (any thread) to subscribed tracks (event loop); a WHEP TrackSource."""

    kind = "audio"
    mime_type = "audio/opus"

    def __init__(self, available: Callable[[], bool] | None = None,
                 on_count: Callable[[int], None] | None = None) -> None:
        self.available = available or (lambda: True)
        self.on_count = on_count
        self._tracks: tuple[AudioPacketTrack, ...] = ()
        self._lock = threading.Lock()

    @property
    def consumers(self) -> int:
        return len(self._tracks)

    def subscribe(self) -> MediaStreamTrack | None:
        """A new track, or None when the stream has no audio (event loop)."""
        if not self.available():
            return None
        track = AudioPacketTrack(self)
        with self._lock:
            self._tracks = (*self._tracks, track)
        self._count()
        return track

    def unsubscribe(self, track: AudioPacketTrack) -> None:
        with self._lock:
            before = len(self._tracks)
            self._tracks = tuple(t for t in self._tracks if t is not track)
            changed = len(self._tracks) != before
        if changed:
            self._count()

    def on_packet(self, packet: MediaPacket) -> None:
        """One Opus packet (transcoder thread)."""
        for track in self._tracks:
            with contextlib.suppress(RuntimeError):  # its loop closed at shutdown
                track.owner_loop.call_soon_threadsafe(track.push, packet)

    def _count(self) -> None:
        if self.on_count is not None:
            try:
                self.on_count(len(self._tracks))
            except Exception:
                logger.exception("audio fan-out: on_count failed")


__all__ = ["AudioFanout", "AudioPacketTrack"]
