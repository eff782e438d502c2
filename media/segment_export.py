"""Recording segments: a wall-clock range of recorded MPEG-TS cut into files of about a given
duration, each beginning on a keyframe, remuxed into MP4 or MPEG-TS without re-encoding,
each with a JPEG thumbnail.

Planning is pure (`keyframe_times` reads packet headers only, `plan_pieces` is arithmetic);
`export_piece` writes one file with `media.clip.cut_clip`. Pieces start exactly on a
keyframe and end before the next piece's keyframe, so consecutive pieces neither overlap nor
leave a gap. Blocking: run it from a worker thread.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av.error

from media.clip import ClipInfo, cut_clip, thumbnail
from media.cut_errors import MediaCutError
from media.snapshot import JpegImage, open_segment

__all__ = ["FORMATS", "ExportedPiece", "export_piece", "keyframe_times", "plan_pieces"]

FORMATS = {"mp4": "mp4", "ts": "mpegts"}
_TS_TIME_BASE = Fraction(1, 90000)
# A boundary stored as a database time loses sub-microsecond digits: keyframes this close
# to a requested start are that start.
_SLACK = 0.001
# A final piece shorter than this (a fraction of a GOP after the last boundary) is dropped.
MIN_PIECE_S = 0.5


@dataclass(frozen=True, slots=True)
class ExportedPiece:
    """A written piece and its thumbnail."""

    clip: ClipInfo
    thumbnail: JpegImage


def keyframe_times(segments: list[Path], starts: list[float]) -> list[float]:
    """Wall-clock times of the keyframes in recorded TS `segments` (no decoding), computed
    exactly as `cut_clip` places packets: the segment's start plus the pts offset from its
    first timed packet."""
    times: list[float] = []
    for path, start in zip(segments, starts, strict=True):
        with closing(open_segment(path)) as container:
            stream = container.streams.video[0]
            time_base = stream.time_base or _TS_TIME_BASE
            first_pts: int | None = None
            try:
                for packet in container.demux(stream):
                    if packet.size == 0 or packet.pts is None:
                        continue
                    if first_pts is None:
                        first_pts = packet.pts
                    if packet.is_keyframe:
                        times.append(start + float((packet.pts - first_pts) * time_base))
            except av.error.FFmpegError as exc:
                raise MediaCutError(f"{path.name}: unreadable ({exc})") from exc
    return sorted(times)


def plan_pieces(keyframes: list[float], start: float, stop: float, duration: float,
                final: bool) -> list[tuple[float, float]]:
    """Pieces `[begin, end)` of about `duration` s covering `[start, stop)`, on keyframes.

    The first piece begins at the first keyframe at or after `start`; each next boundary is
    the keyframe nearest `begin + duration`. Until `final`, a piece is planned only once a
    keyframe at or past `begin + duration` is recorded (so its end is known); when `final`,
    the rest up to `stop` is one last piece.
    """
    ks = [k for k in keyframes if start - _SLACK <= k < stop]
    pieces: list[tuple[float, float]] = []
    if not ks:
        return pieces
    begin = ks[0]
    while True:
        later = [k for k in ks if k > begin]
        target = begin + duration
        if later and later[-1] >= target:
            after = next(k for k in later if k >= target)
            before = [k for k in later if k < target]
            end = after
            if before and (target - before[-1]) < (after - target):
                end = before[-1]
            pieces.append((begin, end))
            begin = end
            continue
        if final and stop - begin >= MIN_PIECE_S:
            pieces.append((begin, stop))
        return pieces


def export_piece(segments: list[Path], starts: list[float], begin: float, end: float,
                 output: Path, thumb_output: Path, fmt: str) -> ExportedPiece:
    """Write `[begin, end)` of the recording to `output` in `fmt` (`mp4` or `ts`) and a JPEG
    of its first frame to `thumb_output` (both renamed into place when complete)."""
    if fmt not in FORMATS:
        raise MediaCutError(f"unknown segment format {fmt!r}")
    info = cut_clip(segments, starts, begin, end, output, container_format=FORMATS[fmt])
    image = thumbnail(output, 0.0)
    partial = thumb_output.with_name(f".{thumb_output.name}.partial")
    partial.write_bytes(image.data)
    partial.replace(thumb_output)
    return ExportedPiece(info, image)
