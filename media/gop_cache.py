"""GopCache: the last keyframe and every packet after it, for consumers that join late.

A WebRTC consumer cannot ask an RTSP camera for a keyframe (PLI does nothing in
passthrough), so without this cache it would wait up to a whole GOP for the next one.
With it, the consumer is sent the cached GOP at once and decodes from the last keyframe.
"""

from __future__ import annotations

import logging
import threading

from media.packet import MediaPacket

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 8 * 1024 * 1024  # ~16 s of a 4 Mbit/s stream
DEFAULT_MAX_PACKETS = 1200  # 40 s at 30 fps


class GopCache:
    """Latest keyframe plus the packets after it, reset at every keyframe.

    The ingest writes keyframes that already carry SPS/PPS, so the first cached packet
    is decodable on its own. A GOP that grows past ``max_bytes`` or ``max_packets`` (a
    camera with a very long or infinite GOP) is dropped entirely and the cache stays
    empty until the next keyframe: a partial GOP cannot be decoded from its middle, and
    growing without limit would let one camera exhaust memory.

    Thread-safe: the ingest thread adds, event-loop tasks take snapshots.
    """

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, max_packets: int = DEFAULT_MAX_PACKETS
    ) -> None:
        if max_bytes <= 0 or max_packets <= 0:
            raise ValueError("GopCache bounds must be positive")
        self.max_bytes = max_bytes
        self.max_packets = max_packets
        self._packets: list[MediaPacket] = []
        self._bytes = 0
        self._lock = threading.Lock()
        self.overflows = 0  # GOPs dropped for exceeding the bounds

    def add(self, packet: MediaPacket) -> None:
        """Add a packet: a keyframe starts a new GOP; others extend the current one."""
        with self._lock:
            if packet.is_keyframe:
                self._packets = [packet]
                self._bytes = packet.size
                return
            if not self._packets:
                return  # no keyframe since start or since an overflow: nothing to extend
            if (
                self._bytes + packet.size > self.max_bytes
                or len(self._packets) + 1 > self.max_packets
            ):
                self.overflows += 1
                logger.warning(
                    "GOP exceeds cache bounds (%d packets, %d bytes); dropping it",
                    len(self._packets) + 1,
                    self._bytes + packet.size,
                )
                self._packets = []
                self._bytes = 0
                return
            self._packets.append(packet)
            self._bytes += packet.size

    def on_packet(self, packet: MediaPacket) -> None:
        """Sink interface: same as :meth:`add`."""
        self.add(packet)

    def snapshot(self) -> list[MediaPacket]:
        """A copy of the cached packets, keyframe first; empty when no GOP is cached."""
        with self._lock:
            return list(self._packets)

    def clear(self) -> None:
        """Forget the cached GOP (e.g. when the source reconnects)."""
        with self._lock:
            self._packets = []
            self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """Bytes currently cached."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._packets)
