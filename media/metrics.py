"""IngestMetrics: bitrate, frame rate, jitter and estimated loss of one RTSP ingest.

Fed from the ingest thread, read from anywhere: every method takes the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from media.packet import MediaPacket

logger = logging.getLogger(__name__)

# Timestamp steps beyond this are a discontinuity (source restart, clock jump), not loss.
_MAX_GAP_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class IngestStats:
    """A point-in-time reading of :class:`IngestMetrics`."""

    bitrate_kbps: float
    fps: float
    jitter_ms: float
    packet_loss: float
    uptime_seconds: float
    last_error: str | None
    last_packet_at: datetime | None
    packets_total: int
    keyframes_total: int
    bytes_total: int
    reconnects: int


@dataclass(slots=True)
class _Sample:
    arrival: float  # monotonic seconds
    size: int
    missing: int  # frames estimated missing just before this one


class IngestMetrics:
    """Sliding-window statistics of the packets one ingest delivers.

    - ``bitrate_kbps``: payload bytes received over the last ``window`` seconds.
    - ``fps``: video packets (one per frame after demuxing) per second over the window.
    - ``jitter_ms``: RFC 3550 § 6.4.1 interarrival jitter, with the packet's decode
      timestamp standing in for the RTP timestamp: for consecutive packets i-1, i,
      ``D = (R_i - R_{i-1}) - (S_i - S_{i-1})`` with R the monotonic arrival time and S
      the timestamp in seconds, and ``J += (|D| - J) / 16``.
    - ``packet_loss``: fraction of frames estimated missing in the window, from timestamp
      gaps. With a nominal frame duration ``d`` (the stream's frame rate when known,
      else the smallest positive step seen on this connection), a step ``Δ`` between
      consecutive timestamps means ``round(Δ / d) - 1`` frames went missing (never
      negative). Loss = missing / (received + missing). Steps over 10 s or backwards
      are treated as a discontinuity, not loss. This sees whole frames FFmpeg could not
      reassemble (lost RTP packets make it drop the frame); it over-counts for sources
      with a variable frame rate.
    - ``uptime_seconds``: time since the ingest last became live (0 when not live).
    """

    def __init__(
        self,
        window: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: deque[_Sample] = deque()
        self._nominal_frame_duration: float | None = None
        self._learned_frame_duration: float | None = None
        self._previous: tuple[float, float] | None = None  # (arrival, timestamp seconds)
        self._jitter = 0.0
        self._live_since: float | None = None
        self._last_error: str | None = None
        self._last_packet_wallclock: float | None = None
        self._packets_total = 0
        self._keyframes_total = 0
        self._bytes_total = 0
        self._reconnects = 0
        self._ever_live = False

    def set_frame_rate(self, fps: float | None) -> None:
        """Give the nominal frame rate used for loss estimation (None: learn it)."""
        with self._lock:
            self._nominal_frame_duration = 1.0 / fps if fps and fps > 0 else None

    def on_live(self) -> None:
        """The source (re)connected: restart uptime and the timestamp comparisons."""
        with self._lock:
            if self._ever_live:
                self._reconnects += 1
            self._ever_live = True
            self._live_since = self._clock()
            self._previous = None
            self._learned_frame_duration = None

    def on_down(self, error: str | None) -> None:
        """The source dropped or failed to open; ``error`` is kept as ``last_error``."""
        with self._lock:
            self._live_since = None
            self._previous = None
            if error is not None:
                self._last_error = error

    def on_packet(self, packet: MediaPacket, arrival: float | None = None) -> None:
        """Account for one packet; ``arrival`` is monotonic seconds (default: now)."""
        now = self._clock() if arrival is None else arrival
        timestamp = float(packet.decode_ts * packet.time_base)
        with self._lock:
            missing = 0
            if self._previous is not None:
                previous_arrival, previous_timestamp = self._previous
                step = timestamp - previous_timestamp
                if 0 < step <= _MAX_GAP_SECONDS:
                    delta = (now - previous_arrival) - step
                    self._jitter += (abs(delta) - self._jitter) / 16.0
                    missing = self._missing_frames(step)
            self._previous = (now, timestamp)
            self._samples.append(_Sample(arrival=now, size=packet.size, missing=missing))
            self._prune(now)
            self._packets_total += 1
            if packet.is_keyframe:
                self._keyframes_total += 1
            self._bytes_total += packet.size
            self._last_packet_wallclock = packet.wallclock

    def _missing_frames(self, step: float) -> int:
        if self._learned_frame_duration is None or step < self._learned_frame_duration:
            self._learned_frame_duration = step
        duration = self._nominal_frame_duration or self._learned_frame_duration
        return max(0, round(step / duration) - 1)

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._samples and self._samples[0].arrival < horizon:
            self._samples.popleft()

    def stats(self) -> IngestStats:
        """Current readings."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            span = self.window
            if self._live_since is not None:
                # Right after (re)connecting the window is not full yet.
                span = min(self.window, max(now - self._live_since, 1e-3))
            received = len(self._samples)
            size = sum(sample.size for sample in self._samples)
            missing = sum(sample.missing for sample in self._samples)
            last_packet_at = (
                datetime.fromtimestamp(self._last_packet_wallclock, UTC)
                if self._last_packet_wallclock is not None
                else None
            )
            return IngestStats(
                bitrate_kbps=size * 8 / 1000 / span,
                fps=received / span,
                jitter_ms=self._jitter * 1000,
                packet_loss=missing / (received + missing) if received + missing else 0.0,
                uptime_seconds=0.0 if self._live_since is None else now - self._live_since,
                last_error=self._last_error,
                last_packet_at=last_packet_at,
                packets_total=self._packets_total,
                keyframes_total=self._keyframes_total,
                bytes_total=self._bytes_total,
                reconnects=self._reconnects,
            )
