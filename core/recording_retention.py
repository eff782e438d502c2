"""Retention over everything recorded: the recorder's HLS segments and the segments of
OmniSight recordings alike, whole segments, oldest first, files and rows together.

Two rules (`/system/settings` `storage`): segments that ended before `retentionDays` ago go,
and while the disk is fuller than `maxUsage` percent the oldest segments go, whichever kind
they are. Recordings left with no segment once they ended disappear with their last one.

For the events that go with them (jobs/actors.py `purge_recordings`): the age rule's cutoff
applies to every camera's events; the disk-use rule reports, per camera, the end of the
newest segment it removed (`RetentionResult.usage_reach`), and the camera's events whose
last moment is before that go too (docs/detection.md, "Retention").
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.clock import as_utc
from core.recordings import RecordingIndex
from core.tables import HlsSegment, RecordingSegment, RecordingSession, Stream

logger = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class RetentionResult:
    """How many segments each rule removed, and how far the disk-use rule reached: per
    camera, the end of the newest segment of that camera it removed."""

    by_age: int
    by_usage: int
    usage_reach: dict[uuid.UUID, datetime] = field(default_factory=dict)


def disk_usage_percent(path: Path) -> float:
    """How full the file system holding `path` is, in percent."""
    usage = shutil.disk_usage(path)
    return 100.0 * usage.used / usage.total if usage.total else 0.0


class RecordingRetention:
    """Removes old segments of the recorder (`index`) and of recordings (under `sessions_root`)."""

    def __init__(self, index: RecordingIndex, sessions_root: Path) -> None:
        self._index = index
        self._root = sessions_root

    async def apply(self, cutoff: datetime, max_usage: float,
                    usage: Callable[[], float]) -> RetentionResult:
        """Both rules: by age (`cutoff`), then by disk use (`usage()` above `max_usage`)."""
        by_age = await self._index.purge_before(cutoff)
        by_age += await self._purge_recording_segments(RecordingSegment.end_at < cutoff)
        by_usage = 0
        reach: dict[uuid.UUID, datetime] = {}
        while usage() > max_usage:
            removed = await self._remove_oldest(reach)  # one at a time: usage is re-read
            if not removed:
                logger.warning("disk use is above %s%% and no recording is left to remove",
                               max_usage)
                break
            by_usage += removed
        await self._forget_empty_recordings()
        return RetentionResult(by_age, by_usage, reach)

    async def _remove_oldest(self, reach: dict[uuid.UUID, datetime], count: int = 1) -> int:
        """The `count` oldest segments of either kind, by start time; `reach` records, per
        camera, the end of the newest one removed."""
        hls = await HlsSegment.select(
            HlsSegment._meta.primary_key, HlsSegment.start_at, HlsSegment.end_at,
            HlsSegment.stream_id,
        ).order_by(HlsSegment.start_at).limit(count)
        own = await RecordingSegment.select(
            RecordingSegment.id, RecordingSegment.start_at, RecordingSegment.end_at,
            RecordingSegment.session_id,
        ).order_by(RecordingSegment.start_at).limit(count)
        merged = sorted([("hls", r) for r in hls] + [("own", r) for r in own],
                        key=lambda pair: pair[1]["start_at"])[:count]
        for kind, row in merged:
            camera = await (_stream_camera(row["stream_id"]) if kind == "hls"
                            else _session_camera(row["session_id"]))
            if camera is not None:
                end = as_utc(row["end_at"])
                reach[camera] = max(end, reach.get(camera, end))
        hls_ids = [r["id"] for kind, r in merged if kind == "hls"]
        own_ids = [r["id"] for kind, r in merged if kind == "own"]
        removed = 0
        if hls_ids:
            removed += await self._index.purge_ids(hls_ids)
        if own_ids:
            removed += await self._purge_recording_segments(RecordingSegment.id.is_in(own_ids))
        return removed

    async def _purge_recording_segments(self, where: Any) -> int:
        rows = await RecordingSegment.select().where(where)
        for row in rows:
            directory = self._root / str(row["session_id"])
            (directory / row["filename"]).unlink(missing_ok=True)
            if row["thumbnail"]:
                (directory / row["thumbnail"]).unlink(missing_ok=True)
        if rows:
            await RecordingSegment.delete().where(
                RecordingSegment.id.is_in([r["id"] for r in rows]))
        return len(rows)

    async def _forget_empty_recordings(self) -> None:
        """Ended recordings whose every segment is gone: manual ones are deleted (with their
        directory), continuous ones become tombstones (so that they are not shown again)."""
        ended = await RecordingSession.select().where(
            RecordingSession.status.is_in(["completed", "failed"]))
        for row in ended:
            if row["kind"] == "manual":
                if row["exported_until"] is None:
                    continue  # its export has not run yet
                left = await RecordingSegment.count().where(
                    RecordingSegment.session_id == row["id"])
                if not left:
                    shutil.rmtree(self._root / str(row["id"]), ignore_errors=True)
                    await RecordingSession.delete().where(RecordingSession.id == row["id"])
            elif not await HlsSegment.count().where(HlsSegment.stream_id == row["stream_id"]):
                await RecordingSession.update({RecordingSession.status: "deleted"}).where(
                    RecordingSession.id == row["id"])


async def _session_camera(session_id: uuid.UUID) -> uuid.UUID | None:
    row = await RecordingSession.select(RecordingSession.camera_id).where(
        RecordingSession.id == session_id).first()
    return row["camera_id"] if row else None


async def _stream_camera(stream_id: uuid.UUID) -> uuid.UUID | None:
    row = await Stream.select(Stream.camera_id).where(Stream.id == stream_id).first()
    return row["camera_id"] if row else None
