"""The audio track of the HLS recorder's segments (media.hls; docs/codecs.md).

The recorder's writer thread hands every camera audio packet here: it is converted to
ADTS AAC (media.audio.RecordingAudio) and muxed into the open segment, on the video's
timeline.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
from av.container import OutputContainer
from av.stream import Stream

from media.audio import AudioInfo, RecordingAudio
from media.packet import MediaPacket


class SegmentAudio:
    """The audio track of the recorder's segments (writer thread only).

    Audio timestamps are placed on the video's (rebased) timeline by arrival time once,
    then follow the camera's audio clock; re-anchored after a jump of more than a second.
    """

    def __init__(self) -> None:
        self._converter: RecordingAudio | None = None
        self._offset: Fraction | None = None  # seconds added to audio timestamps
        self._video: tuple[Fraction, float] | None = None  # last video pts, its arrival
        self._last_pts: int | None = None

    def reset(self) -> None:
        """Forget the anchor (after a source restart)."""
        self._offset = None
        self._last_pts = None

    def anchor(self, video_pts: Fraction, wallclock: float) -> None:
        """A video packet at ``video_pts`` (seconds) arrived at ``wallclock``."""
        self._video = (video_pts, wallclock)

    def add_stream(self, container: OutputContainer, info: AudioInfo | None) -> Stream | None:
        """Add the AAC track to a new segment, when the camera has audio."""
        if info is None:
            return None
        if self._converter is None or self._converter.info != info:
            self._converter = RecordingAudio(info)
            self.reset()
        rate = self._converter.sample_rate
        stream = container.add_mux_stream("aac", rate=rate)
        stream.time_base = Fraction(1, rate)
        self._last_pts = None
        return stream

    def write(self, segment: Any, packet: MediaPacket,
              info: AudioInfo | None) -> None:
        """Mux one audio packet of the camera into the open segment (if it has audio)."""
        converter = self._converter
        if segment is None or segment.audio is None or converter is None or self._video is None:
            return
        if converter.info != info:
            return  # the camera changed its audio: the next segment takes the new one
        for aac in converter.convert(packet):
            seconds = aac.pts * aac.time_base
            video_pts, video_wallclock = self._video
            estimate = video_pts + Fraction(aac.wallclock - video_wallclock)
            if self._offset is None or abs(seconds + self._offset - estimate) > 1:
                self._offset = estimate - seconds
            at = seconds + self._offset
            if at < segment.first_pts:
                continue  # before the segment's opening keyframe
            rate = (segment.audio.time_base or Fraction(1, 90000)).denominator
            pts = round(at * rate)
            if self._last_pts is not None and pts <= self._last_pts:
                continue
            self._last_pts = pts
            av_packet = av.Packet(aac.data)
            av_packet.pts = av_packet.dts = pts
            av_packet.time_base = Fraction(1, rate)
            av_packet.stream = segment.audio
            segment.container.mux(av_packet)
