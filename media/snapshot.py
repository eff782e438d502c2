"""Snapshots: one decoded picture, encoded as JPEG, from a cached GOP or recorded segments.

A live snapshot decodes the GOP cache (``GopCache.snapshot()``) from its keyframe to its
newest packet; a historical one decodes a recorded MPEG-TS segment from its start (every
segment begins with a keyframe) until it passes the requested wall-clock time. Neither
decodes more than that: P-frames need everything since the keyframe, nothing else.

JPEG encoding uses FFmpeg's ``mjpeg`` encoder through PyAV, so no imaging library is
needed. Everything here is blocking: call it from a worker thread, not the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import ColorRange

from media.cut_errors import MediaCutError, NoFootageError, SnapshotError
from media.packet import MediaPacket

__all__ = [
    "DEFAULT_TOLERANCE",
    "JpegImage",
    "MediaCutError",
    "NoFootageError",
    "SnapshotError",
    "TimedFrame",
    "encode_jpeg",
    "jpeg_at",
    "jpeg_from_packets",
    "nearest_frame",
    "open_segment",
    "segment_frames",
]

logger = logging.getLogger(__name__)

# A historical snapshot whose nearest frame is further than this from the requested time
# would show another moment (the time falls in a recording gap): refuse rather than lie.
DEFAULT_TOLERANCE = 2.0

# Options for opening recorded segments (see ``open_segment``).
_PROBE_OPTIONS = {"skip_frame": "all"}


@dataclass(frozen=True, slots=True)
class JpegImage:
    """A JPEG picture; ``pts_seconds`` is the frame's presentation time in its source.

    ``wallclock`` is the frame's Unix time when the source tells it (live: the packet's
    arrival time; historical: the segment's start plus the frame's offset in it).
    """

    data: bytes
    width: int
    height: int
    pts_seconds: float
    wallclock: float | None = None


@dataclass(frozen=True, slots=True)
class TimedFrame:
    """A decoded frame and the time it stands for (seconds, on the caller's timeline)."""

    time: float
    pts_seconds: float
    frame: VideoFrame


def jpeg_from_packets(packets: list[MediaPacket], *, quality: int = 90) -> JpegImage:
    """JPEG of the newest frame in ``packets`` (a GOP cache snapshot), decoded from its keyframe.

    Only the packets from the last keyframe on are decoded; earlier ones cannot contribute
    to the newest picture. Raises :class:`SnapshotError` when there is no keyframe or
    nothing decodes.
    """
    start = _last_keyframe_index(packets)
    if start is None:
        raise SnapshotError("no keyframe among the packets: nothing can be decoded")
    gop = packets[start:]
    decoder: Any = av.CodecContext.create(gop[0].codec, "r")  # h264 or hevc
    newest: VideoFrame | None = None
    for packet in [*gop, None]:
        try:
            frames = decoder.decode(None if packet is None else packet.to_av())
        except av.error.FFmpegError as exc:
            # One damaged packet costs its own picture (and what references it), not
            # the snapshot: keep feeding, the decoder conceals what it can.
            logger.debug("packet did not decode: %s", exc)
            continue
        for frame in frames:
            if isinstance(frame, VideoFrame) and (newest is None or _pts(frame) >= _pts(newest)):
                newest = frame
    if newest is None:
        raise SnapshotError(f"none of the {len(gop)} packets from the keyframe decoded")
    pts = _pts(newest)
    time_base = gop[0].time_base
    wallclock = next((p.wallclock for p in reversed(gop) if p.pts == pts), gop[-1].wallclock)
    return encode_jpeg(
        newest, quality=quality, pts_seconds=float(pts * time_base), wallclock=wallclock
    )


def jpeg_at(
    segments: list[Path],
    segment_starts: list[float],
    at: float,
    *,
    quality: int = 90,
    tolerance: float = DEFAULT_TOLERANCE,
) -> JpegImage:
    """JPEG of the recorded frame nearest to wall-clock time ``at`` (Unix seconds).

    ``segments`` are consecutive MPEG-TS files, each starting with a keyframe, and
    ``segment_starts`` their wall-clock start times. A frame's time is its segment's
    start plus its pts offset from the segment's first packet, so timestamp jumps
    between segments do not matter. Only the segment holding ``at`` is decoded, from its
    start until the first frame past ``at`` (plus the first frame of the next segment
    when ``at`` falls after the last frame). Raises :class:`NoFootageError` when the
    nearest frame is more than ``tolerance`` seconds away.
    """
    _check_segments(segments, segment_starts)
    index = _segment_index(segment_starts, at)
    with closing(segment_frames(segments[index], segment_starts[index])) as frames:
        best = nearest_frame(frames, at)
    if (best is None or best.time < at) and index + 1 < len(segments):
        # ``at`` is past the segment's last frame: the next segment's first frame (a
        # keyframe, decoded alone) may be nearer.
        with closing(segment_frames(segments[index + 1], segment_starts[index + 1])) as nxt:
            first = next(nxt, None)
        if first is not None and (best is None or first.time - at < at - best.time):
            best = first
    if best is None:
        raise SnapshotError(f"{segments[index].name}: no frame decodes")
    if abs(best.time - at) > tolerance:
        raise NoFootageError(
            f"no recording at {at:.3f}: the nearest frame is {abs(best.time - at):.1f} s away"
        )
    return encode_jpeg(
        best.frame, quality=quality, pts_seconds=best.pts_seconds, wallclock=best.time
    )


def nearest_frame(frames: Iterable[TimedFrame], at: float) -> TimedFrame | None:
    """The frame whose time is nearest ``at``; stops reading at the first frame past it.

    ``frames`` must come in presentation order (a decoder's output order). On a tie the
    earlier frame wins: it is the picture that was on screen at ``at``.
    """
    previous: TimedFrame | None = None
    for timed in frames:
        if timed.time >= at:
            if previous is not None and at - previous.time <= timed.time - at:
                return previous
            return timed
        previous = timed
    return previous


def segment_frames(path: Path, start_wallclock: float) -> Generator[TimedFrame, None, None]:
    """Decode a recorded segment from its start; each frame's time is wall-clock.

    A generator holding the file open: close it (``contextlib.closing``) when stopping
    early. Undecodable packets are skipped; the decoder conceals what follows.
    """
    with open_segment(path) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        first_pts: int | None = None
        try:
            for packet in container.demux(stream):
                if first_pts is None and packet.pts is not None:
                    # The keyframe opening the segment: it is at the segment's start time.
                    first_pts = packet.pts
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    logger.debug("%s: packet did not decode: %s", path.name, exc)
                    continue
                for frame in frames:
                    if first_pts is not None and frame.pts is not None:
                        yield TimedFrame(
                            time=start_wallclock + float((frame.pts - first_pts) * time_base),
                            pts_seconds=float(frame.pts * time_base),
                            frame=frame,
                        )
        except av.error.FFmpegError as exc:
            # Demuxing errors only: a generator does not see its consumer's exceptions.
            raise MediaCutError(f"{path.name}: unreadable ({exc})") from exc


def open_segment(path: Path) -> InputContainer:
    """Open a recorded MPEG-TS segment that has a video stream, or raise MediaCutError.

    Stream probing is told not to decode: the TS header and the H.264 parser already
    give the picture size, and probing would otherwise decode the first keyframe only
    to throw it away (about 10 ms per 1080p segment, most of a clip cut's time).
    The streams' own decoders are separate contexts and decode normally.
    """
    try:
        container = av.open(str(path), options=_PROBE_OPTIONS)
    except av.error.FFmpegError as exc:
        # Retention may have deleted it since the index was read, or it is damaged.
        raise MediaCutError(f"{path.name}: cannot be read ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise MediaCutError(f"{path.name}: holds no video stream")
    return container


def encode_jpeg(
    frame: VideoFrame,
    *,
    quality: int = 90,
    pts_seconds: float | None = None,
    wallclock: float | None = None,
) -> JpegImage:
    """Encode one frame as a baseline JPEG with FFmpeg's mjpeg encoder.

    ``quality`` runs from 1 (smallest) to 100 (best), mapped onto the encoder's
    quantiser scale 31..2 the way ``ffmpeg -q:v`` is used for JPEG.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, not {quality}")
    qscale = round(31 - (quality - 1) * 29 / 99)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = frame.width, frame.height
    encoder.pix_fmt = "yuv420p"
    # JPEG is full range; FFmpeg's mjpeg encoder refuses limited-range yuv420p. The
    # frame is converted below, so say what it is rather than use deprecated yuvj420p.
    encoder.color_range = ColorRange.JPEG
    encoder.time_base = Fraction(1, 25)
    # qmin = qmax pins the quantiser; the qscale flag alone would need per-frame quality.
    encoder.options = {"qmin": str(qscale), "qmax": str(qscale)}
    picture = frame.reformat(format="yuv420p", dst_color_range=ColorRange.JPEG)
    picture.pts = 0
    packets = encoder.encode(picture) + encoder.encode(None)
    data = b"".join(bytes(packet) for packet in packets)
    if not data:
        raise SnapshotError("the JPEG encoder produced no data")
    if pts_seconds is None:
        pts_seconds = float(frame.time) if frame.time is not None else 0.0
    return JpegImage(
        data=data,
        width=frame.width,
        height=frame.height,
        pts_seconds=pts_seconds,
        wallclock=wallclock,
    )


def _last_keyframe_index(packets: list[MediaPacket]) -> int | None:
    for index in range(len(packets) - 1, -1, -1):
        if packets[index].is_keyframe:
            return index
    return None


def _pts(frame: VideoFrame) -> int:
    return frame.pts if frame.pts is not None else -1


def _check_segments(segments: list[Path], segment_starts: list[float]) -> None:
    if len(segments) != len(segment_starts):
        raise ValueError("segments and segment_starts differ in length")
    if not segments:
        raise NoFootageError("no recorded segments")


def _segment_index(segment_starts: list[float], at: float) -> int:
    """The last segment starting at or before ``at`` (the first one if none does)."""
    index = 0
    for candidate, start in enumerate(segment_starts):
        if start <= at:
            index = candidate
    return index
