"""Playable MP4s of recording segments (`GET /media/segments/:id?format=mp4`).

A continuous recording's segments are the recorder's MPEG-TS files, which `<video>` in
Chromium does not play. This remuxes such a segment and the one after it (so a moment near
the segment's end still has footage after it) into a faststart MP4 with PyAV, stream copy,
never re-encoding (`media.clip.cut_clip`). The MP4's time 0 is the segment's start, so a
moment `t` plays at `t - segment.startTime`.

Results are cached under `<data dir>/recordings/playback/`, named by the segment's id and
the number of segments remuxed (a segment remuxed before its neighbour was written is made
again once it is), and the cache keeps at most `CACHE_FILES` files (oldest used dropped).
Continuous segments have derived ids (uuid5 of stream id and file name) that no row stores:
they are found by deriving the id of every indexed recorder segment (docs/omnisight.md).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from core.errors import MediaUnavailable, NotFound
from core.recordings import RecordingIndex
from media.clip import cut_clip
from media.cut_errors import MediaCutError

logger = logging.getLogger(__name__)

CACHE_FILES = 32
# The remux reads packets in [start, end): a little past the indexed end keeps the last frame.
_END_SLACK = timedelta(seconds=0.5)


@dataclass(frozen=True, slots=True)
class Source:
    """TS files to remux, in order, with their wall-clock starts, and the range to keep."""

    key: str  # cache name: the segment id and how many files
    paths: list[Path]
    starts: list[float]
    begin: float
    end: float


async def continuous_source(index: RecordingIndex, segment_id: uuid.UUID) -> Source | None:
    """The recorder segment whose derived id is `segment_id` and the next one of its stream
    (when written), or None when no indexed recorder segment has that id."""
    segment = await index.by_derived_id(segment_id)
    if segment is None:
        return None
    later = await index.following(segment)
    chosen = [segment]
    if later is not None and not later.discontinuity:
        chosen.append(later)
    return Source(key=f"{segment_id}-{len(chosen)}",
                  paths=[index.path(s) for s in chosen],
                  starts=[s.start.timestamp() for s in chosen],
                  begin=segment.start.timestamp(),
                  end=(chosen[-1].end + _END_SLACK).timestamp())


def single_source(segment_id: uuid.UUID, path: Path, start: float, end: float) -> Source:
    """One TS file (a manual recording's segment in `ts` format)."""
    return Source(key=f"{segment_id}-1", paths=[path], starts=[start], begin=start,
                  end=end + _END_SLACK.total_seconds())


def _build(source: Source, output: Path) -> None:
    """Remux (blocking); a cached file is reused and marked as just used."""
    if output.is_file():
        output.touch()
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    missing = [p.name for p in source.paths if not p.is_file()]
    if missing:
        raise NotFound(f"Segment file {missing[0]} is not on disk")
    cut_clip(source.paths, source.starts, source.begin, source.end, output,
             container_format="mp4")
    cached = sorted(output.parent.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
    for old in cached[:-CACHE_FILES]:
        old.unlink(missing_ok=True)


async def playable_mp4(cache: Path, source: Source) -> Path:
    """The cached faststart MP4 of `source`, made now when needed (off the event loop)."""
    output = cache / f"{source.key}.mp4"
    try:
        await asyncio.to_thread(_build, source, output)
    except MediaCutError as exc:
        logger.warning("segment %s: no playable MP4: %s", source.key, exc)
        raise MediaUnavailable("The segment could not be remuxed to MP4", str(exc)) from exc
    return output
