"""The audio track of a bookmark clip: the recording's AAC, copied on the clip's timeline.

Kept apart from ``media.clip`` (video), which calls it for every audio packet of the
segments it reads. Audio packets are placed by the same wall-clock rule as video (the
segment's recorded start plus their offset from the segment's first video packet), and
only once the clip's first video frame is written: a clip opens on a picture.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

logger = logging.getLogger(__name__)


class ClipAudio:
    """Muxes the segments' audio into the clip (no re-encode)."""

    def __init__(self, container: OutputContainer, time_base: Fraction) -> None:
        self.container = container
        self.time_base = time_base
        self.stream: Stream | None = None
        self._last_dts: int | None = None
        self.packets = 0

    def open(self, template: Stream | None) -> None:
        """Add the audio track, like the first segment's (with the video, before any
        packet is muxed: the MP4 header lists every track)."""
        if template is None or template.codec_context is None:
            return
        if template.codec_context.name != "aac":
            return  # recordings carry AAC (media.audio); anything else is not copied
        self.stream = self.container.add_stream_from_template(template)
        self.stream.time_base = self.time_base

    def write(self, packet: av.Packet[Any], ticks: int) -> None:
        """Mux one audio packet at ``ticks`` (clip time base) from the clip's origin."""
        if self.stream is None or ticks < 0:
            return
        if self._last_dts is not None and ticks <= self._last_dts:
            return
        duration = packet.duration or 0
        if duration and packet.time_base is not None:
            duration = round(duration * packet.time_base / self.time_base)
        packet.pts = packet.dts = ticks
        packet.time_base = self.time_base
        packet.duration = duration
        packet.stream = self.stream
        self._last_dts = ticks
        self.container.mux(packet)
        self.packets += 1
