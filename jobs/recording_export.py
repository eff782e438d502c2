"""The segment export of OmniSight recordings (worker): a manual session's range of the HLS
recording cut into files of its `segmentDuration`, on keyframes, in its `format`, each with
a thumbnail (media/segment_export.py), recorded as `vas_recording_segment` rows.

Runs while the recording proceeds (housekeeping enqueues it whenever a segment's worth is
recorded) and once more after it ended. Idempotent: progress is read from the rows, files are
renamed into place, and a Redis lock keeps two workers off one session at a time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from core.errors import NotFound
from core.recording_export import RecordingExports
from core.recording_sessions import RecordingSessionService, SessionRecord
from core.recordings import RecordingIndex, Segment
from core.settings import Settings
from core.streams import StreamService
from media.segment_export import export_piece, keyframe_times, plan_pieces

logger = logging.getLogger(__name__)

LOCK_S = 900


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class RecordingExporter:
    """Exports the segments of manual recordings from one data dir's HLS recording."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = settings.server.data_dir
        self.index = RecordingIndex(settings.media.recordings_dir(data_dir))
        self.sessions = RecordingSessionService(data_dir / "recordings" / "sessions", self.index)
        self.exports = RecordingExports()
        assert settings.redis.url is not None
        self.redis = Redis.from_url(settings.redis.url)

    async def export(self, session_id: uuid.UUID) -> int:
        """Export what is due for one session; returns how many segments were written."""
        lock = self.redis.lock(f"{self.settings.redis.namespace}:recording-export:{session_id}",
                               timeout=LOCK_S, blocking=False)
        if not await lock.acquire():
            return 0  # another job is on it; the schedule comes back
        try:
            return await self._export(session_id)
        finally:
            await lock.release()

    async def _export(self, session_id: uuid.UUID) -> int:
        try:
            record = await self.sessions.get(session_id)
        except NotFound:
            return 0  # deleted meanwhile
        if record.kind != "manual" or record.exported_until is not None:
            return 0
        final = record.status != "recording"
        if final:
            await self.exports.attempt(session_id)
        progress = await self.exports.progress(session_id)
        since = progress.last_end or record.start
        segments = await self._recorded(record, since, final)
        if not segments:
            if final:
                await self.exports.done(session_id, record.end or since)
            return 0
        stop = record.end if final and record.end is not None else segments[-1].end
        paths = [self.index.path(s) for s in segments]
        starts = [s.start.timestamp() for s in segments]
        keyframes = await asyncio.to_thread(keyframe_times, paths, starts)
        pieces = plan_pieces(keyframes, since.timestamp(), stop.timestamp(),
                             float(record.settings.segment_duration_s), final)
        directory = self.sessions.directory(session_id)
        directory.mkdir(parents=True, exist_ok=True)
        fmt = record.settings.format
        sequence = progress.next_sequence
        for begin, end in pieces:
            name = f"segment_{sequence:05d}"
            piece = await asyncio.to_thread(
                export_piece, paths, starts, begin, end, directory / f"{name}.{fmt}",
                directory / f"{name}.jpg", fmt)
            clip = piece.clip
            await self.exports.add(
                session_id, sequence, f"{name}.{fmt}", f"{name}.jpg", _utc(begin), _utc(end),
                clip.duration_seconds, clip.size, fmt,
                record.settings.resolution or f"{clip.width}x{clip.height}")
            sequence += 1
        if final:
            await self.exports.done(session_id, stop)
        logger.info("recording %s: %d segments exported%s", session_id, len(pieces),
                    " (done)" if final else "")
        return len(pieces)

    async def _recorded(self, record: SessionRecord, since: datetime,
                        final: bool) -> list[Segment]:
        """The recorder's segments from `since`; for an ended session, once they reach its
        end (or the stream stopped, or the recorder is late beyond a deadline)."""
        if not final or record.end is None:
            return await self.index.between(record.stream_id, since, datetime.max.replace(
                tzinfo=UTC))
        end = record.end
        deadline = end + timedelta(seconds=3 * self.settings.media.hls_segment_s + 30)
        while True:
            segments = await self.index.between(record.stream_id, since, end)
            if segments and segments[-1].end >= end:
                return segments
            stream = await StreamService().get(record.stream_id)
            if not stream.active or datetime.now(UTC) > deadline:
                return segments
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        await self.redis.aclose()
