"""One stream's pipeline on a media node: RTSP ingest → GOP cache, then the HLS recorder and
the stream's WebRTC Router (its fan-out to every viewer), with the stream's state changes
and recorded segments written to the database."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from core.clock import as_utc, iso_ms, utcnow
from core.db import database_unreachable
from core.errors import Conflict
from core.notify import system_notification
from core.recordings import RecordingIndex
from core.settings import Settings
from core.stream_states import StreamState
from core.streams import StreamService, failure_fields
from jobs.camera_guard import camera_resolver
from jobs.metrics import add_cpu_seconds
from jobs.node.codecs import FFMPEG_NAMES, TranscodePolicy, VideoPlan, codec_config, plan_video
from jobs.node.detection import StreamDetection
from jobs.node.protocol import source_failure, source_lost
from jobs.node.tasks import TaskSet
from jobs.node.viewers import StreamViewers
from media.audio import AudioInfo, audio_config
from media.audio_fanout import AudioFanout
from media.audio_transcode import OpusTranscoder
from media.errors import SourceError
from media.gop_cache import GopCache
from media.hls import HlsRecorder, SegmentInfo
from media.ingest import IngestState, RtspIngest, StateCallback
from media.metrics import IngestMetrics
from media.packet import PacketSink
from media.rtsp_source import StreamInfo, Transport
from media.transcode import VideoTranscoder

logger = logging.getLogger(__name__)

INDEX_RETRY_FIRST_S = 0.5
INDEX_RETRY_MAX_S = 5.0


class Ingest(Protocol):
    """What a pipeline needs of its ingest (`media.ingest.RtspIngest`, or a test's fake)."""

    gop_cache: GopCache
    metrics: IngestMetrics
    on_state: StateCallback | None

    @property
    def audio_info(self) -> AudioInfo | None: ...

    def add_sink(self, sink: PacketSink) -> None: ...

    def add_audio_sink(self, sink: PacketSink) -> None: ...

    async def open(self) -> StreamInfo: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


IngestFactory = Callable[[str, Transport, Settings, str], Ingest]


def rtsp_ingest(url: str, transport: Transport, settings: Settings, name: str) -> Ingest:
    """The real ingest: PyAV on the camera's RTSP URL."""
    return RtspIngest(url, transport=transport, open_timeout=settings.media.rtsp_open_timeout_s,
                      read_timeout=settings.media.rtsp_read_timeout_s, name=name,
                      resolve=camera_resolver(settings))


class StreamPipeline:
    """Ingest, recording and viewers of one stream, supervised on the node's event loop."""

    def __init__(
        self,
        stream_id: uuid.UUID,
        source_url: str,
        transport: Transport,
        settings: Settings,
        index: RecordingIndex,
        start_sequence: int,
        streams: StreamService | None = None,
        ingest_factory: IngestFactory = rtsp_ingest,
        detection: StreamDetection | None = None,
        transcode: TranscodePolicy | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.policy = transcode or TranscodePolicy()
        self.plan: VideoPlan | None = None
        self.transcoder: VideoTranscoder | None = None
        self.detection = detection
        self._media = settings.media
        self.viewers: StreamViewers
        self._wired = False
        self._streams = streams or StreamService()
        self._index = index
        self._tasks = TaskSet()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopped = asyncio.Event()
        self.ingest = ingest_factory(source_url, transport, settings, f"stream {stream_id}")
        self.ingest.on_state = self._on_state
        # WebRTC audio: the camera's audio as Opus, transcoded while a consumer takes it.
        self.opus = OpusTranscoder(lambda: self.ingest.audio_info, name=f"stream {stream_id}")
        self.audio_fanout = AudioFanout(available=lambda: self.ingest.audio_info is not None,
                                        on_count=self._on_audio_demand)
        self.opus.sinks.append(self.audio_fanout)
        self.recorder = HlsRecorder(
            index.directory(stream_id),
            target_duration=settings.media.hls_segment_s,
            start_sequence=start_sequence,
            on_segment=self._on_segment,
            on_failure=self._on_recording_failure,
        )

    def _attach(self) -> None:
        """Recorder and detection start; the rest waits for the camera's codec (`_wire`)."""
        self._loop = asyncio.get_running_loop()
        self.recorder.set_audio(lambda: self.ingest.audio_info)
        self.ingest.add_audio_sink(self.recorder.audio_sink)
        self.ingest.add_audio_sink(self.opus)
        self.recorder.start()
        if self.detection is not None:  # decodes on a thread of its own, only when enabled
            self.detection.start()
            self.ingest.add_sink(self.detection)

    def _wire(self, codec: str, width: int, height: int, fps: float | None,
              profile: str | None) -> None:
        """Recorder and WebRTC fan-out as sinks of the ingest (the GOP cache comes first),
        directly or through the transcoder, as the device's `transcode` setting and the
        camera's codec say (jobs.node.codecs). Synchronous: called right after the open,
        before the ingest thread delivers its first packet."""
        self.plan = plan = plan_video(codec, width, height, profile, self.policy)
        transcoder = None
        if plan.transcode or plan.baseline_profile is not None:
            transcoder = VideoTranscoder(self.ingest.gop_cache, self.policy.settings, fps=fps,
                                         name=f"stream {self.stream_id}",
                                         cpu_meter=partial(add_cpu_seconds, "transcoder", "node"))
            self.transcoder = transcoder
        if transcoder is not None and plan.transcode:
            self.viewers = StreamViewers(self.stream_id, transcoder.gop_cache, self._media,
                                         on_demand=self._on_demand)
            transcoder.sinks.append(self.viewers.router.fanout)
            if plan.always_on:  # MJPEG: what is recorded is the transcoder's H.264
                transcoder.sinks.append(self.recorder)
                transcoder.start()
            self.ingest.add_sink(transcoder)
        else:
            self.viewers = StreamViewers(self.stream_id, self.ingest.gop_cache, self._media)
            self.ingest.add_sink(self.viewers.router.fanout)
            if transcoder is not None and plan.baseline_profile is not None:
                # H.264 in a profile some consumers refuse: they get the transcoder's.
                baseline = self.viewers.add_baseline(transcoder.gop_cache, plan.baseline_profile)
                transcoder.sinks.append(baseline.fanout)
                self.viewers.on_demand = self._on_demand
                self.ingest.add_sink(transcoder)
        if not plan.always_on:
            self.ingest.add_sink(self.recorder)
        self.viewers.refusal = plan.refusal
        self.viewers.router.sources.append(self.audio_fanout)
        self.viewers.router.profile_level_id = plan.served_profile
        self._wired = True

    @property
    def wired(self) -> bool:
        """Whether the camera was opened and the viewers' side built (`viewers` exists)."""
        return self._wired

    def _on_audio_demand(self, consumers: int) -> None:
        """The Opus transcoder runs while a consumer takes audio."""
        if consumers > 0 and not self.stopped.is_set():
            self.opus.start()
        else:
            self.opus.stop()

    def _on_demand(self, viewers: int) -> None:
        """StreamViewers' count of WebRTC viewers: the transcoder runs while there are any."""
        transcoder, plan = self.transcoder, self.plan
        if transcoder is None or plan is None or plan.always_on or self.stopped.is_set():
            return
        if viewers > 0:
            transcoder.start()
        else:
            transcoder.stop()

    async def open(self) -> StreamInfo:
        """First open, for start-stream: raises the guide's error when the camera fails."""
        self._attach()
        try:
            info = await self.ingest.open()
        except SourceError as exc:
            await self.recorder.stop()
            if self.detection is not None:
                await self.detection.stop()
            raise source_failure(exc) from None
        self._wire(info.codec, info.width, info.height, info.fps, info.profile_level_id)
        return info

    def codec_config(self, info: StreamInfo) -> dict[str, Any]:
        """The stream's `codec_config`: what is ingested, recorded and served."""
        assert self.plan is not None
        config = codec_config(info, self.plan, self.policy)
        audio = self.ingest.audio_info
        if audio is not None:  # only then: a camera without sound keeps the guide's keys
            config["audio"] = audio_config(audio)
        return config

    def start(self, config: dict[str, Any] | None) -> None:
        """Start without a first open (taking over a stream): the ingest retries on its own;
        the codec is the one the stream had (its `codec_config`)."""
        self._attach()
        video = (config or {}).get("video") or {}
        codec = FFMPEG_NAMES.get(str(video.get("codec") or "H264"), "h264")
        self._wire(codec, int(video.get("width") or 0), int(video.get("height") or 0),
                   video.get("fps"), video.get("profile"))
        self.ingest.start()

    async def stop(self) -> None:
        """Stop viewers, ingest and recording; the last partial segment is indexed."""
        self.stopped.set()
        if self._wired:
            await self.viewers.close_all()
        if self.transcoder is not None:
            self.transcoder.stop()
        self.opus.stop()
        await self.ingest.stop()
        if self.detection is not None:
            await self.detection.stop()
        await self.recorder.stop()
        await self._tasks.join()

    def metrics(self) -> dict[str, Any]:
        stats = self.ingest.metrics.stats()
        return {
            "bitrate_kbps": round(stats.bitrate_kbps, 1),
            "fps": round(stats.fps, 2),
            "packet_loss": round(stats.packet_loss, 4),
            "jitter_ms": round(stats.jitter_ms, 2),
            "reconnects": stats.reconnects,
            "recorder_dropped": self.recorder.dropped,
            # Why recording stopped (e.g. "No space left on device"); None while it works.
            "recording_error": self.recorder.failure,
            "viewers": self.viewers.count if self._wired else 0,
            "transcoder": self.transcoder.stats() if self.transcoder is not None else None,
            "audio_transcoder": self.opus.stats() if self.ingest.audio_info else None,
            "detection": self.detection.stats() if self.detection is not None else None,
            # When the camera last sent a packet (OmniSight `lastSeen`).
            "last_packet_at": iso_ms(stats.last_packet_at),
        }

    # -- callbacks --------------------------------------------------------------------

    def _on_state(self, state: IngestState, failure: SourceError | None) -> None:
        """Runs on the event loop: mirror the ingest's state into the stream's.

        A drop is written in the guide's vocabulary, code first (`RTSP_TIMEOUT: …`,
        `RTSP_CONNECTION_FAILED: …`): the guide's own client tells an offline camera by
        `last_error.includes('RTSP')` (§5.5).
        """
        if self.stopped.is_set():
            return
        if state is IngestState.LIVE:
            self._tasks.spawn(self.mark(StreamState.LIVE, last_error=None, error_code=None))
        elif state is IngestState.ERROR:
            error = source_lost(failure or SourceError("source lost"))
            fields = failure_fields(error)
            if error.detail:
                fields["last_error"] += f" ({error.detail})"
            self._tasks.spawn(self.mark(StreamState.ERROR, **fields))

    async def mark(self, target: StreamState, **fields: Any) -> None:
        """Move the stream to `target` unless it is there already or may not go there."""
        row = await self._streams.get(self.stream_id)
        if row.state is target:
            return
        if target is StreamState.LIVE and row.started_at is None:
            fields["started_at"] = utcnow()
        try:
            await self._streams.transition(self.stream_id, target, **fields)
        except Conflict:
            logger.info("stream %s is %s; not marking it %s", self.stream_id, row.state,
                        target.value)

    def _on_segment(self, info: SegmentInfo) -> None:
        """Runs on the recorder thread: index the segment from the event loop."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._tasks.spawn, self._index_segment(info))

    def _on_recording_failure(self, reason: str | None) -> None:
        """Runs on the recorder thread: tell every client that recording stopped or resumed."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if reason is None:
            message = system_notification(
                "info", f"Recording of stream {self.stream_id} resumed")
        else:
            message = system_notification(
                "error", f"Recording of stream {self.stream_id} stopped: {reason}; the live "
                "stream goes on, recording resumes by itself when writing works again")
        loop.call_soon_threadsafe(self._tasks.spawn, self._streams.announce(message))

    async def _index_segment(self, info: SegmentInfo) -> None:
        """Index a recorded segment; while the database is away, keep trying (the file is
        on disk, its row must not be lost), without indexing it twice."""
        delay = INDEX_RETRY_FIRST_S
        for attempt in itertools.count():
            try:
                await self._index.add_once(
                    self.stream_id, info.sequence, info.filename, as_utc(info.start),
                    as_utc(info.end), info.duration, info.size, info.discontinuity)
                if attempt:
                    logger.info("segment %s of stream %s indexed after %d retries",
                                info.filename, self.stream_id, attempt)
                return
            except Exception as exc:
                if not database_unreachable(exc):
                    raise
                if attempt == 0:
                    logger.warning("database away; segment %s of stream %s is indexed when "
                                   "it returns", info.filename, self.stream_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, INDEX_RETRY_MAX_S)
