"""ContinuousTimeline: keeps packet timestamps monotonic across source restarts.

After an RTSP reconnect the camera's timestamps start over at an arbitrary value, which
would make a muxer reject packets ("non monotonically increasing dts") and a WebRTC
receiver stall. Rebasing them here, once, gives every consumer one timeline.
"""

from __future__ import annotations

import logging
from fractions import Fraction

from media.packet import MediaPacket

logger = logging.getLogger(__name__)

# Smallest step placed between the last packet before a restart and the first after it.
_MIN_STEP = Fraction(1, 1000)


class ContinuousTimeline:
    """Shifts packet timestamps so decode order timestamps never go backwards.

    Packets pass through unchanged until a restart is signalled or a decode timestamp
    fails to increase; from then on an offset is added so that the first packet of the
    new run follows the last one by the wall-clock time that passed between their
    arrivals (at least 1 ms). Presentation time therefore keeps tracking real time,
    which is what players and RTP receivers expect after a gap.
    """

    def __init__(self) -> None:
        self._offset = Fraction(0)  # seconds added to every timestamp
        self._last_ts: Fraction | None = None  # last output decode time, seconds
        self._last_wallclock = 0.0

    def rebase(self, packet: MediaPacket, restart: bool = False) -> MediaPacket:
        """Return ``packet`` shifted onto the continuous timeline."""
        ts = packet.decode_ts * packet.time_base
        if self._last_ts is not None and (restart or ts + self._offset <= self._last_ts):
            gap = max(Fraction(packet.wallclock - self._last_wallclock), _MIN_STEP)
            self._offset = self._last_ts + gap - ts
            logger.debug("timeline rebased: offset now %.3f s", float(self._offset))
        units = round(self._offset / packet.time_base)
        out = packet.shifted(units) if units else packet
        self._last_ts = out.decode_ts * out.time_base
        self._last_wallclock = packet.wallclock
        return out

    def reset(self) -> None:
        """Forget the history: the next packet passes unchanged."""
        self._offset = Fraction(0)
        self._last_ts = None
