"""Clips: a wall-clock range of recorded MPEG-TS segments remuxed into one MP4, not re-encoded.

The video and audio packets are copied as they are (audio: media.clip_audio); only their
timestamps change. The clip starts
at the keyframe at or before the requested start (a clip must open on a keyframe to
decode from its first frame) and ends at the last packet before the requested end.
Every segment is placed on the clip's timeline by its wall-clock start, so timestamp
jumps between segments (source reconnects) do not leak into the MP4.

Blocking (file I/O and muxing): run it from a worker or a job, never the event loop.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.container import OutputContainer
from av.stream import Stream

from media.clip_audio import ClipAudio
from media.cut_errors import MediaCutError, NoFootageError, SnapshotError
from media.snapshot import JpegImage, TimedFrame, encode_jpeg, nearest_frame, open_segment

__all__ = ["ClipInfo", "MediaCutError", "NoFootageError", "cut_clip", "thumbnail"]

logger = logging.getLogger(__name__)

# The clip's timestamps are kept in MPEG-TS's own 90 kHz clock: exact for TS input.
CLIP_TIME_BASE = Fraction(1, 90000)
# Report progress no more often than this fraction of the clip: a callback that stores
# it somewhere, called per packet, would cost more than the remux itself.
_PROGRESS_STEP = 0.02

Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """A written clip: its duration comes from the packet timestamps, not the request."""

    path: Path
    duration_seconds: float
    size: int  # bytes
    width: int
    height: int
    first_wallclock: float  # Unix time of the clip's first frame
    last_wallclock: float  # Unix time of its last frame


@dataclass(slots=True)
class _TimedPacket:
    """A demuxed packet and its presentation/decode times on the wall clock."""

    packet: av.Packet[Any]
    wallclock: float  # presentation time
    decode_wallclock: float
    audio: bool = False  # an audio packet (media.clip_audio)


def cut_clip(segments: list[Path], segment_starts: list[float], start: float, end: float,
             output: Path, *, progress: Progress | None = None,
             container_format: str = "mp4") -> ClipInfo:
    """Write wall-clock ``[start, end)`` of consecutive TS ``segments`` to ``output`` (MP4,
    or MPEG-TS with ``container_format="mpegts"``).

    ``segment_starts`` are the segments' wall-clock start times (Unix seconds), as
    indexed by the recorder. The MP4 has ``+faststart`` (index before data, so a browser
    plays it while downloading) and is written to a temporary file beside ``output``,
    then renamed: readers never see half a clip. ``progress`` gets fractions in [0, 1].
    Raises :class:`NoFootageError` (a :class:`MediaCutError`) when no segment covers the
    range.
    """
    if len(segments) != len(segment_starts):
        raise ValueError("segments and segment_starts differ in length")
    if not end > start:
        raise MediaCutError(f"empty range: end {end:.3f} is not after start {start:.3f}")
    chosen = _covering(segments, segment_starts, start, end)
    if not chosen:
        raise NoFootageError(f"no recorded segment covers {start:.3f}..{end:.3f}")
    partial = output.with_name(f".{output.name}.{uuid.uuid4().hex}.partial")
    try:
        info = _remux(chosen, start, end, partial, output, progress, container_format)
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(1.0)
    logger.info("clip %s: %.3f s, %d bytes from %d segments", output.name,
                info.duration_seconds, info.size, len(chosen))
    return info


def thumbnail(mp4: Path, at_seconds: float, *, quality: int = 90) -> JpegImage:
    """JPEG of the clip's frame nearest ``at_seconds`` from its start.

    Seeks to the keyframe at or before that time (the MP4 index says where) and decodes
    from there, so a thumbnail late in a long clip does not decode the whole clip.
    """
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or CLIP_TIME_BASE
        origin = stream.start_time or 0
        container.seek(origin + max(0, int(at_seconds / time_base)), stream=stream, backward=True)

        def frames() -> Generator[TimedFrame, None, None]:
            for frame in container.decode(stream):
                if frame.pts is not None:
                    seconds = float((frame.pts - origin) * time_base)
                    yield TimedFrame(time=seconds, pts_seconds=seconds, frame=frame)

        with closing(frames()) as decoded:
            best = nearest_frame(decoded, at_seconds)
    if best is None:
        raise SnapshotError(f"{mp4.name}: no frame decodes")
    return encode_jpeg(best.frame, quality=quality, pts_seconds=best.pts_seconds)


def _covering(
    segments: list[Path], segment_starts: list[float], start: float, end: float
) -> list[tuple[Path, float]]:
    """The segments to read: from the last one starting at or before ``start``, up to
    (excluding) the first one starting at or after ``end``.

    A segment's end is known only by reading it, so the first one may turn out to end
    before ``start``; :func:`_remux` drops what it read from it in that case.
    """
    pairs = sorted(zip(segments, segment_starts, strict=True), key=lambda pair: pair[1])
    first = 0
    for index, (_, segment_start) in enumerate(pairs):
        if segment_start <= start:
            first = index
    return [(path, seg_start) for path, seg_start in pairs[first:] if seg_start < end]


class _ProgressReporter:
    """Forwards progress in steps of at least ``_PROGRESS_STEP``, below 1.0 until done."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self.reported = 0.0

    def report(self, fraction: float) -> None:
        """Pass ``fraction`` on if it moved far enough since the last report."""
        if self.callback is not None and fraction - self.reported >= _PROGRESS_STEP:
            self.reported = fraction
            # 1.0 is kept for the finished file (after the index is written and renamed).
            self.callback(min(fraction, 0.99))


class _SegmentReader:
    """One recorded segment, open for demuxing (no decoding).

    Packet times are the segment's wall-clock start plus their pts offset from its first
    packet (the keyframe that opens it), whatever the absolute timestamps in the file.
    """

    def __init__(self, path: Path, start_wallclock: float) -> None:
        self.path = path
        self.start_wallclock = start_wallclock
        self._container = open_segment(path)
        self._stream = self._container.streams.video[0]
        audio = list(self._container.streams.audio)
        self.audio = audio[0] if audio else None
        # From the SPS, as FFmpeg's H.264 parser read it while probing.
        self.width = self._stream.codec_context.width
        self.height = self._stream.codec_context.height
        self.codec = self._stream.codec_context.name  # h264 or hevc: copied as it is

    def packets(self) -> Iterator[_TimedPacket]:
        """The segment's packets in decode order, with their wall-clock times."""
        time_base = self._stream.time_base or CLIP_TIME_BASE
        first_pts: int | None = None
        streams = [self._stream] if self.audio is None else [self._stream, self.audio]
        try:
            for packet in self._container.demux(streams):
                if packet.size == 0 or packet.pts is None:
                    continue  # the flush packet at the end, or an untimed one
                if packet.stream is self.audio:
                    if first_pts is not None:  # same 90 kHz clock as the video in MPEG-TS
                        at = self.start_wallclock + float((packet.pts - first_pts) * time_base)
                        yield _TimedPacket(packet=packet, wallclock=at, decode_wallclock=at,
                                           audio=True)
                    continue
                if first_pts is None:
                    first_pts = packet.pts
                dts = packet.dts if packet.dts is not None else packet.pts
                yield _TimedPacket(
                    packet=packet,
                    wallclock=self.start_wallclock + float((packet.pts - first_pts) * time_base),
                    decode_wallclock=self.start_wallclock + float((dts - first_pts) * time_base),
                )
        except av.error.FFmpegError as exc:
            # Only demuxing errors land here: a generator does not see its consumer's.
            raise MediaCutError(f"{self.path.name}: unreadable ({exc})") from exc

    def close(self) -> None:
        """Close the file."""
        self._container.close()


class _ClipWriter:
    """Muxes packets on the clip's timeline, keeping decode timestamps strictly rising.

    The timeline is wall-clock time minus the first frame's: each segment lands where its
    recorded start says, whatever its own timestamps. Packets are muxed one behind, so
    that each gets its duration (the MP4 muxer needs it for the sample table).
    """

    def __init__(self, path: Path, container_format: str = "mp4") -> None:
        options = {"movflags": "+faststart"} if container_format == "mp4" else {}
        self.container: OutputContainer = av.open(
            str(path), "w", format=container_format, options=options
        )
        self.stream: Stream | None = None
        self.origin = 0.0  # wall-clock time of the clip's first frame
        self.last_wallclock = 0.0  # of the frame with the highest pts
        self.width = 0
        self.height = 0
        self._max_pts = 0
        self._step = 0  # last positive dts step: a frame's duration, in CLIP_TIME_BASE
        self._segment_size = (0, 0)
        self._codec = "h264"
        self._segment_shift = 0  # ticks added to the current segment to keep time rising
        self._segment_begins = True
        self._last_dts: int | None = None
        self._held: av.Packet[Any] | None = None
        self.audio = ClipAudio(self.container, CLIP_TIME_BASE)
        self._audio_template: Stream | None = None

    @property
    def started(self) -> bool:
        """Whether the clip's first packet has been written."""
        return self.stream is not None

    @property
    def duration(self) -> float:
        """From the first frame's start to the end of the last frame, in seconds."""
        return float((self._max_pts + self._step) * CLIP_TIME_BASE)

    def begin_segment(self, width: int, height: int, codec: str = "h264",
                      audio: Stream | None = None) -> None:
        """Packets from a new segment follow: check its start against the last packet."""
        if self.started and (width, height) != (self.width, self.height):
            # The MP4 has one sample description; players mostly follow the in-band SPS
            # that every keyframe carries, but say so when the camera changed size.
            logger.warning("clip changes picture size mid-way: %dx%d -> %dx%d",
                           self.width, self.height, width, height)
        self._segment_size = (width, height)
        self._codec = codec
        self._audio_template = audio
        self._segment_shift = 0
        self._segment_begins = True

    def write(self, timed: _TimedPacket) -> None:
        """Rebase one packet onto the clip's timeline and mux the one before it."""
        if self.stream is None:
            self.width, self.height = self._segment_size
            self.stream = self.container.add_mux_stream(
                self._codec, width=self.width, height=self.height
            )
            self.stream.time_base = CLIP_TIME_BASE
            self.audio.open(self._audio_template)
            self.origin = timed.wallclock
        pts = self._ticks(timed.wallclock)
        dts = self._ticks(timed.decode_wallclock)
        if self._segment_begins and self._last_dts is not None and dts <= self._last_dts:
            # The segment's wall-clock start (taken at packet arrival) jittered to before
            # the previous segment's end: push the whole segment one frame past it.
            self._segment_shift = self._last_dts + max(self._step, 1) - dts
        self._segment_begins = False
        pts, dts = pts + self._segment_shift, dts + self._segment_shift
        if self._last_dts is not None:
            if dts <= self._last_dts:
                # Within one recorded segment this does not happen (the recorder keeps
                # its timestamps rising); a muxer would refuse the packet anyway.
                logger.warning("skipping a packet that goes back in time (dts %d)", dts)
                return
            self._step = dts - self._last_dts
        self._last_dts = dts
        if pts >= self._max_pts:
            self._max_pts = pts
            self.last_wallclock = timed.wallclock
        packet = timed.packet
        packet.pts, packet.dts, packet.time_base = pts, dts, CLIP_TIME_BASE
        self._mux_held(next_dts=dts)
        self._held = packet

    def close(self) -> None:
        """Mux the last packet and write the index (moved before the data: faststart)."""
        self._mux_held(next_dts=None)
        self.container.close()

    def abandon(self) -> None:
        """Close after a failure; the caller deletes the file."""
        try:
            self.container.close()
        except Exception:
            logger.debug("closing the abandoned clip failed too", exc_info=True)

    def _mux_held(self, next_dts: int | None) -> None:
        held, self._held = self._held, None
        if held is None or self.stream is None or held.dts is None:
            return
        held.duration = next_dts - held.dts if next_dts is not None else max(self._step, 1)
        held.stream = self.stream
        self.container.mux(held)

    def _ticks(self, wallclock: float) -> int:
        return round((wallclock - self.origin) / CLIP_TIME_BASE)


def _remux(chosen: list[tuple[Path, float]], start: float, end: float, partial: Path,
           output: Path, progress: Progress | None, container_format: str) -> ClipInfo:
    writer = _ClipWriter(partial, container_format)
    reporter = _ProgressReporter(progress)
    try:
        for path, segment_start in chosen:
            with closing(_SegmentReader(path, segment_start)) as segment:
                _copy_segment(segment, writer, start, end, reporter)
        if not writer.started:
            raise NoFootageError(f"no recorded frame between {start:.3f} and {end:.3f}")
        writer.close()
    except BaseException:
        writer.abandon()
        raise
    return ClipInfo(path=output, duration_seconds=writer.duration, size=partial.stat().st_size,
                    width=writer.width, height=writer.height, first_wallclock=writer.origin,
                    last_wallclock=writer.last_wallclock)


def _copy_segment(
    segment: _SegmentReader,
    writer: _ClipWriter,
    start: float,
    end: float,
    reporter: _ProgressReporter,
) -> None:
    """Write the segment's packets that belong to the clip, stopping at ``end``."""
    writer.begin_segment(segment.width, segment.height, segment.codec, segment.audio)
    # Until the clip has begun: the packets since the newest keyframe at or before
    # ``start`` (the opening GOP), committed once one reaches ``start``. Left behind at
    # the segment's end if none does: the recording has a gap there and the clip
    # begins in a later segment.
    pending: list[_TimedPacket] = []
    for timed in segment.packets():
        if timed.wallclock >= end:
            if timed.audio:
                continue
            return
        if timed.audio:
            if writer.started:
                writer.audio.write(timed.packet, writer._ticks(timed.wallclock))
            continue
        if writer.started:
            writer.write(timed)
        else:
            pending = _extend_opening(pending, timed, start)
            if not pending or timed.wallclock < start:
                continue
            for held in pending:
                writer.write(held)
            pending = []
        reporter.report((timed.wallclock - writer.origin) / (end - writer.origin))


def _extend_opening(
    pending: list[_TimedPacket], timed: _TimedPacket, start: float
) -> list[_TimedPacket]:
    """The clip's opening GOP with ``timed`` considered.

    A keyframe at or before ``start`` replaces what was pending (a later keyframe means
    less to decode); failing any, the first keyframe after ``start`` opens the clip.
    Packets before the first keyframe cannot be decoded and are skipped.
    """
    if timed.packet.is_keyframe and (timed.wallclock <= start or not pending):
        return [timed]
    if pending:
        pending.append(timed)
    return pending
