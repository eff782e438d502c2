"""The jobs that make snapshots and clips; shared by the media node (live snapshots, from the
GOP cache) and the worker (historical snapshots and bookmark clips, from the recording).

Every job is idempotent: files are written beside their target and renamed into place, so
a job that runs twice (redelivered after a worker died) leaves one good file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.captures import BookmarkService, CaptureFiles, CaptureStatus, SnapshotService
from core.clock import utcnow
from core.recordings import RecordingIndex, Segment
from core.settings import Settings
from core.streams import StreamService
from media.clip import cut_clip, thumbnail
from media.cut_errors import MediaCutError
from media.gop_cache import GopCache
from media.snapshot import jpeg_at, jpeg_from_packets

logger = logging.getLogger(__name__)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    partial.replace(path)


class Captures:
    """Snapshot and bookmark jobs against one data dir and one recording index."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.files = CaptureFiles(settings.server.data_dir)
        self.index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
        self.snapshots = SnapshotService(self.files, self.index)
        self.bookmarks = BookmarkService(self.files, self.index)

    async def live_snapshot(self, snapshot_id: uuid.UUID, gop_cache: GopCache | None) -> None:
        """The newest frame of the live stream, decoded from its GOP cache (media node)."""
        row = await self.snapshots.get(snapshot_id)
        if row.status is not CaptureStatus.PROCESSING:
            return
        packets = gop_cache.snapshot() if gop_cache is not None else []
        for _ in range(30):  # just after LIVE, the first keyframe may still be on its way
            if packets or gop_cache is None:
                break
            await asyncio.sleep(0.1)
            packets = gop_cache.snapshot()
        if not packets:
            await self.snapshots.failed(snapshot_id, "no video received from the camera yet")
            return
        try:
            image = await asyncio.to_thread(jpeg_from_packets, packets)
        except MediaCutError as exc:
            await self.snapshots.failed(snapshot_id, str(exc))
            return
        await asyncio.to_thread(write_atomically, self.files.snapshot(snapshot_id), image.data)
        moment = datetime.fromtimestamp(packets[-1].wallclock, UTC)
        await self.snapshots.ready(snapshot_id, len(image.data), image.width, image.height,
                                   timestamp=moment)

    async def historical_snapshot(self, snapshot_id: uuid.UUID) -> None:
        """The recorded frame nearest the requested time (worker)."""
        row = await self.snapshots.get(snapshot_id)
        if row.status is not CaptureStatus.PROCESSING:
            return
        moment: datetime = row.timestamp
        segments = await self._recorded_at(row.stream_id, snapshot_id, moment)
        if not segments:
            await self.snapshots.failed(snapshot_id, "the recording of that moment is gone")
            return
        paths, starts = self._files_of(segments)
        try:
            image = await asyncio.to_thread(jpeg_at, paths, starts, moment.timestamp())
        except MediaCutError as exc:
            await self.snapshots.failed(snapshot_id, str(exc))
            return
        await asyncio.to_thread(write_atomically, self.files.snapshot(snapshot_id), image.data)
        await self.snapshots.ready(snapshot_id, len(image.data), image.width, image.height)

    async def export_bookmark(self, bookmark_id: uuid.UUID) -> None:
        """Wait until [start, end] is recorded, cut it into an MP4, add a thumbnail (worker)."""
        row = await self.bookmarks.get(bookmark_id)
        if row.status is not CaptureStatus.PROCESSING:
            return
        start, end = row.start_time, row.end_time
        segment_s = self.settings.media.hls_segment_s
        deadline = end + timedelta(seconds=3 * segment_s + 30)
        while True:
            segments = await self.index.between(row.stream_id, start, end)
            if segments and segments[-1].end >= end:
                break
            stream = await StreamService().get(row.stream_id)
            if utcnow() > deadline or not stream.active:
                if not segments:
                    await self.bookmarks.failed(bookmark_id, "no recording covers the clip")
                    return
                break  # the stream ended: cut what was recorded
            # Show that the job is alive, so housekeeping does not take it for lost.
            await self.bookmarks.touch(bookmark_id)
            await asyncio.sleep(1.0)
        paths, starts = self._files_of(segments)
        output = self.files.clip(bookmark_id)
        output.parent.mkdir(parents=True, exist_ok=True)
        try:
            info = await asyncio.to_thread(cut_clip, paths, starts, start.timestamp(),
                                           end.timestamp(), output)
            at = max(0.0, row.center_timestamp.timestamp() - info.first_wallclock)
            thumb = await asyncio.to_thread(thumbnail, output, min(at, info.duration_seconds))
        except MediaCutError as exc:
            await self.bookmarks.failed(bookmark_id, str(exc))
            return
        await asyncio.to_thread(write_atomically, self.files.thumbnail(bookmark_id), thumb.data)
        await self.bookmarks.ready(bookmark_id, info.size)

    async def _recorded_at(self, stream_id: uuid.UUID, snapshot_id: uuid.UUID,
                           moment: datetime) -> list[Segment]:
        """The segments around `moment`. A recent moment of an active stream may not be
        indexed yet (its segment still open, or closed while the database was away and
        indexed when it returned, e.g. a live snapshot run again as historical): wait for it
        as a bookmark waits for its end, within the same bound."""
        deadline = moment + timedelta(seconds=3 * self.settings.media.hls_segment_s + 30)
        while True:
            segments = await self.index.between(stream_id, moment - timedelta(seconds=1),
                                                moment + timedelta(seconds=1))
            if segments or utcnow() > deadline or not (await StreamService().get(
                    stream_id)).active:
                return segments
            await self.snapshots.touch(snapshot_id)
            await asyncio.sleep(1.0)

    def _files_of(self, segments: list[Segment]) -> tuple[list[Path], list[float]]:
        return ([self.index.path(s) for s in segments], [s.start.timestamp() for s in segments])
