"""HLS playlist rendering (RFC 8216): pure functions over segment descriptions.

Segments come from the recorder (``SegmentInfo``) or from stored rows: anything with
``sequence``, ``filename``, ``start``, ``end`` and ``duration`` will do.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

logger = logging.getLogger(__name__)

# Wall-clock slack between one segment's end and the next one's start that still counts
# as contiguous: arrival jitter, not a reconnect (which takes at least its 1 s backoff).
DEFAULT_GAP_TOLERANCE = 1.0


class PlaylistSegment(Protocol):
    """What a playlist needs to know about a segment."""

    @property
    def sequence(self) -> int:
        """Monotonic segment number."""

    @property
    def filename(self) -> str:
        """File name, appended to the playlist's base URL."""

    @property
    def start(self) -> datetime:
        """Wall-clock time of the first frame (timezone-aware)."""

    @property
    def end(self) -> datetime:
        """Wall-clock time just after the last frame."""

    @property
    def duration(self) -> float:
        """Media duration in seconds."""


def is_discontinuous(
    previous: PlaylistSegment, segment: PlaylistSegment, tolerance: float = DEFAULT_GAP_TOLERANCE
) -> bool:
    """Whether ``segment`` does not directly continue ``previous``.

    True when sequence numbers skip, when the wall-clock gap between them exceeds
    ``tolerance`` seconds, or when the segment says so itself (``discontinuity``).
    """
    if getattr(segment, "discontinuity", False):
        return True
    if segment.sequence != previous.sequence + 1:
        return True
    return abs((segment.start - previous.end).total_seconds()) > tolerance


def live_playlist(
    segments: Sequence[PlaylistSegment],
    target_duration: float,
    media_sequence: int | None = None,
    *,
    base_url: str = "",
    discontinuity_sequence: int = 0,
) -> str:
    """A live (sliding-window) media playlist: no ENDLIST, clients reload it.

    ``media_sequence`` defaults to the first segment's sequence number, which is what it
    must be; ``discontinuity_sequence`` counts discontinuities that slid out of the window.
    """
    if media_sequence is None:
        media_sequence = segments[0].sequence if segments else 0
    lines = _header(segments, target_duration, media_sequence)
    if discontinuity_sequence:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    lines += _segment_lines(segments, base_url)
    return "\n".join(lines) + "\n"


def vod_playlist(
    segments: Sequence[PlaylistSegment],
    target_duration: float | None = None,
    *,
    base_url: str = "",
) -> str:
    """A complete (VOD) media playlist ending in #EXT-X-ENDLIST, e.g. for a time range."""
    media_sequence = segments[0].sequence if segments else 0
    lines = _header(segments, target_duration or 0.0, media_sequence)
    lines.append("#EXT-X-PLAYLIST-TYPE:VOD")
    lines += _segment_lines(segments, base_url)
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _header(
    segments: Sequence[PlaylistSegment], target_duration: float, media_sequence: int
) -> list[str]:
    # RFC 8216 § 4.3.3.1: every EXTINF, rounded to the nearest integer, must not exceed
    # the target duration; a segment cut late (long GOP) raises it.
    longest = max((_round_half_up(segment.duration) for segment in segments), default=0)
    target = max(1, _round_half_up(target_duration), longest)
    return [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{media_sequence}",
    ]


def _segment_lines(segments: Sequence[PlaylistSegment], base_url: str) -> list[str]:
    lines: list[str] = []
    previous: PlaylistSegment | None = None
    for segment in segments:
        if previous is not None and is_discontinuous(previous, segment):
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{format_program_date_time(segment.start)}")
        lines.append(f"#EXTINF:{segment.duration:.3f},")
        lines.append(f"{base_url}{segment.filename}")
        previous = segment
    return lines


def format_program_date_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. ``2024-05-01T12:00:00.000Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # stored naive datetimes are UTC by convention
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)
