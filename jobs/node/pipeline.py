"""One stream's pipeline on a media node: RTSP ingest → GOP cache, HLS recorder (and, later,
WebRTC fan-out), with its state changes and segments written to the database."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from core.clock import utcnow
from core.errors import (
    Conflict,
    RtspConnectionFailed,
    RtspTimeout,
    SsrcCaptureFailed,
    StreamError,
    StreamStartFailed,
)
from core.recordings import RecordingIndex
from core.settings import Settings
from core.stream_states import StreamState
from core.streams import StreamService
from jobs.viewers import StreamViewers
from media.errors import NoVideoStream, SourceError, SourceTimeout, SourceUnauthorized
from media.hls import HlsRecorder, SegmentInfo
from media.ingest import IngestState, RtspIngest
from media.rtsp_source import StreamInfo, Transport

logger = logging.getLogger(__name__)


def start_error(exc: SourceError) -> StreamError:
    """The guide's error for a source that could not be opened."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, SourceTimeout):
        return RtspTimeout("Camera did not answer in time", detail)
    if isinstance(exc, NoVideoStream):
        return SsrcCaptureFailed("Failed to capture video from RTSP source", detail)
    if isinstance(exc, SourceUnauthorized):
        return RtspConnectionFailed("Camera refused the credentials", detail)
    if isinstance(exc, SourceError):
        return RtspConnectionFailed("Failed to connect to RTSP source", detail)
    return StreamStartFailed("Stream start failed", detail)


def codec_config(info: StreamInfo) -> dict[str, Any]:
    """`codec_config` of the stream detail, from what the camera really sends."""
    return {"video": {
        "codec": "H264",
        "profile": info.profile_level_id,
        "payloadType": 96,
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
    }}


class StreamPipeline:
    """Ingest and recording of one stream, supervised on the node's event loop."""

    def __init__(
        self,
        stream_id: uuid.UUID,
        source_url: str,
        transport: Transport,
        settings: Settings,
        index: RecordingIndex,
        start_sequence: int,
    ) -> None:
        self.stream_id = stream_id
        self._media = settings.media
        self.viewers: StreamViewers
        self._streams = StreamService()
        self._index = index
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopped = asyncio.Event()
        self.ingest = RtspIngest(
            source_url,
            transport=transport,
            open_timeout=settings.media.rtsp_open_timeout_s,
            read_timeout=settings.media.rtsp_read_timeout_s,
            on_state=self._on_state,
            name=f"stream {stream_id}",
        )
        self.recorder = HlsRecorder(
            index.directory(stream_id),
            target_duration=settings.media.hls_segment_s,
            start_sequence=start_sequence,
            on_segment=self._on_segment,
        )

    def _attach(self) -> None:
        """Recorder and WebRTC fan-out as sinks of the ingest (the GOP cache comes first)."""
        self._loop = asyncio.get_running_loop()
        self.viewers = StreamViewers(self.stream_id, self.ingest.gop_cache, self._media)
        self.recorder.start()
        self.ingest.add_sink(self.recorder)
        self.ingest.add_sink(self.viewers.fanout)

    async def open(self) -> StreamInfo:
        """First open, for start-stream: raises the guide's error when the camera fails."""
        self._attach()
        try:
            info = await self.ingest.open()
        except SourceError as exc:
            await self.viewers.close_all()
            await self.recorder.stop()
            raise start_error(exc) from None
        self.viewers.profile_level_id = info.profile_level_id
        return info

    def start(self, profile_level_id: str | None) -> None:
        """Start without a first open (taking over a stream): the ingest retries on its own."""
        self._attach()
        self.viewers.profile_level_id = profile_level_id
        self.ingest.start()

    async def stop(self) -> None:
        """Stop viewers, ingest and recording; the last partial segment is indexed."""
        self.stopped.set()
        await self.viewers.close_all()
        await self.ingest.stop()
        await self.recorder.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def metrics(self) -> dict[str, Any]:
        stats = self.ingest.metrics.stats()
        return {
            "bitrate_kbps": round(stats.bitrate_kbps, 1),
            "fps": round(stats.fps, 2),
            "packet_loss": round(stats.packet_loss, 4),
            "jitter_ms": round(stats.jitter_ms, 2),
            "reconnects": stats.reconnects,
            "recorder_dropped": self.recorder.dropped,
            "viewers": self.viewers.count,
        }

    # -- callbacks --------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_state(self, state: IngestState, message: str | None) -> None:
        """Runs on the event loop: mirror the ingest's state into the stream's."""
        if self.stopped.is_set():
            return
        if state is IngestState.LIVE:
            self._spawn(self.mark(StreamState.LIVE, last_error=None))
        elif state is IngestState.ERROR:
            self._spawn(self.mark(StreamState.ERROR, last_error=message or "RTSP source lost"))

    async def mark(self, target: StreamState, **fields: Any) -> None:
        row = await self._streams.get(self.stream_id)
        if row["state"] == target.value:
            return
        if target is StreamState.LIVE and row["started_at"] is None:
            fields["started_at"] = utcnow()
        try:
            await self._streams.transition(self.stream_id, target, **fields)
        except Conflict:
            logger.info("stream %s is %s; not marking it %s", self.stream_id, row["state"],
                        target.value)

    def _on_segment(self, info: SegmentInfo) -> None:
        """Runs on the recorder thread: index the segment from the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        coro = self._index.add(
            self.stream_id, info.sequence, info.filename, _utc(info.start), _utc(info.end),
            info.duration, info.size, info.discontinuity,
        )
        loop.call_soon_threadsafe(self._spawn, coro)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
