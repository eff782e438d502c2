"""What a media node does with streams: start, stop, take over, serve viewer requests, and
keep its leases. All of it runs on the node's event loop; actors reach it through
`jobs.context`, with the typed requests of `jobs.node.protocol`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from core.consumers import ConsumerService
from core.credentials import CredentialBox
from core.detection_changes import GLOBAL
from core.detection_settings import DetectionSettingsService
from core.devices import DeviceService
from core.errors import Conflict, StreamError, StreamStartFailed
from core.leases import StreamLeases
from core.notify import Notifier
from core.recordings import RecordingIndex
from core.settings import Settings
from core.stream_states import StreamState
from core.streams import StreamRecord, StreamService
from core.system_settings import SystemSettingsService
from jobs.captures import Captures
from jobs.client import JobClient
from jobs.node.codecs import TranscodePolicy
from jobs.node.detection import StreamDetection
from jobs.node.pipeline import IngestFactory, StreamPipeline, rtsp_ingest
from jobs.node.protocol import (
    AddCandidate,
    AnswerSession,
    CloseConsumer,
    Connect,
    Connected,
    Consume,
    Consumed,
    Done,
    OfferSession,
    Pong,
    SessionOffer,
    Started,
    Stopped,
    ViewerRequest,
    WhepAnswer,
    WhepOffer,
    WhepPatch,
)
from jobs.node.viewers import StreamViewers

logger = logging.getLogger(__name__)


class NodeFull(Exception):
    """This node runs as many streams as its capacity allows; another node should take it."""


class MediaNodeRuntime:
    """The streams one node owns, and the operations on them."""

    def __init__(self, settings: Settings, node_id: str,
                 ingest_factory: IngestFactory = rtsp_ingest,
                 notifier: Notifier | None = None) -> None:
        self.settings = settings
        self.node_id = node_id
        self.leases = StreamLeases(node_id, settings.media.lease_s)
        self.consumers = ConsumerService()
        self.streams = StreamService(self.consumers, notifier)
        self.devices = DeviceService(CredentialBox(settings.auth.credentials_key))
        self.index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
        self.pipelines: dict[uuid.UUID, StreamPipeline] = {}
        self.captures = Captures(settings)
        self._ingest_factory = ingest_factory
        self._starting: set[uuid.UUID] = set()
        # Set on SIGTERM: the node takes no new streams while it hands its own over.
        self.draining = False
        # Set by the media-node process: object-detection jobs go through it. Without it
        # (tests driving the runtime alone) streams run without detection.
        self.jobs: JobClient | None = None
        self.detection_settings = DetectionSettingsService(SystemSettingsService(
            settings.media.recordings_dir(settings.server.data_dir)))

    @property
    def load(self) -> int:
        return len(self.pipelines) + len(self._starting)

    def has_capacity(self) -> bool:
        return self.load < self.settings.media.node_capacity

    def ping(self, sent_at: float) -> Pong:
        return Pong(node_id=self.node_id, sent_at=sent_at, answered_at=time.time())

    async def _pipeline_for(self, stream: StreamRecord) -> StreamPipeline:
        device = await self.devices.get(stream.camera_id)
        return StreamPipeline(
            stream.id, self.devices.source_url(device), device.rtsp_transport,
            self.settings, self.index, await self.index.next_sequence(stream.id),
            streams=self.streams, ingest_factory=self._ingest_factory,
            detection=self._detection_for(stream), transcode=TranscodePolicy.of(device.settings),
        )

    def _detection_for(self, stream: StreamRecord) -> StreamDetection | None:
        jobs, bound = self.jobs, self.settings.media.detect_queue_max
        if jobs is None:
            return None
        return StreamDetection(stream.camera_id, stream.id,
                               lambda job: jobs.send_detection(job, bound),
                               self.detection_settings)

    def detection_changed(self, scope: str) -> None:
        """The API announced a settings change (a camera's id, or `global`): the streams
        concerned re-read their detection settings now (core.detection_changes)."""
        for pipeline in self.pipelines.values():
            detection = pipeline.detection
            if detection is not None and scope in (GLOBAL, str(detection.camera_id)):
                detection.refresh()

    async def start(self, stream_id: uuid.UUID) -> Started:
        """The start job: claim the stream, open the camera and go LIVE; a camera that fails
        closes the stream with the guide's error, which is raised."""
        if self.draining or not self.has_capacity():
            raise NodeFull(f"node {self.node_id} is full or stopping")
        if not await self.leases.claim(stream_id):
            return Started(owner=None)
        if stream_id in self.pipelines:
            return Started(owner=self.node_id)
        self._starting.add(stream_id)
        try:
            pipeline = await self._pipeline_for(await self.streams.get(stream_id))
            try:
                info = await pipeline.open()
            except StreamError as exc:
                logger.info("stream %s failed to start: %s", stream_id, exc.message)
                await self.streams.fail(stream_id, exc)
                await self.leases.release(stream_id)
                raise
            self.pipelines[stream_id] = pipeline
        finally:
            self._starting.discard(stream_id)
        await self.streams.ensure_producer(stream_id)
        await self.streams.set_codec(stream_id, pipeline.codec_config(info))
        with contextlib.suppress(Conflict):  # already LIVE when the ingest reported first
            await self.streams.transition(stream_id, StreamState.READY)
        await pipeline.mark(StreamState.LIVE, last_error=None, error_code=None)
        state = (await self.streams.get(stream_id)).state
        if state is not StreamState.LIVE:
            raise StreamStartFailed(f"stream is {state.value}")
        # The first measurement goes with going LIVE: health has figures and a time at once,
        # not only after the next heartbeat.
        await self.streams.report_metrics(stream_id, self.node_id, pipeline.metrics())
        return Started(owner=self.node_id)

    async def take_over(self, stream_id: uuid.UUID) -> bool:
        """Restart a stream whose node stopped renewing its lease; True when we took it."""
        if self.draining or stream_id in self.pipelines or stream_id in self._starting:
            return False
        if not self.has_capacity():
            return False
        # Held from the claim until the pipeline is in place: a hand-over and the heartbeat
        # may offer the same stream at once, and only one of them may start it.
        self._starting.add(stream_id)
        try:
            before = await self.streams.get(stream_id)
            if not await self.leases.claim(stream_id, restarting="media node lost; restarting"):
                return False
            stream = await self.streams.get(stream_id)
            logger.warning("taking over stream %s (was on %s)", stream_id, before.node_id)
            await self.streams.announce_status(stream.camera_id, before.state, stream.state)
            await self.consumers.close_all(stream_id)  # their transports died with the node
            pipeline = await self._pipeline_for(stream)
            self.pipelines[stream_id] = pipeline
        finally:
            self._starting.discard(stream_id)
        pipeline.start(stream.codec_config)
        return True

    async def stop(self, stream_id: uuid.UUID) -> Stopped:
        """The stop job: end the pipeline, then STOPPED → CLOSED with consumers closed."""
        pipeline = self.pipelines.pop(stream_id, None)
        if pipeline is not None:
            await pipeline.stop()
        await self.streams.close(stream_id)
        await self.leases.release(stream_id)
        return Stopped(stopped=pipeline is not None)

    async def viewer(
        self, request: ViewerRequest
    ) -> Consumed | Connected | Done | WhepAnswer | SessionOffer:
        """A consumer or WHEP request for a stream this node runs (409 when it runs none)."""
        viewers = self.viewers(request.stream_id)
        if viewers is None:
            raise Conflict("Stream is not running on its node")
        match request:
            case Consume():
                return await viewers.consume(request.consumer_id, request.client_id,
                                             request.rtp_capabilities, request.kind)
            case Connect():
                return await viewers.connect(request.consumer_id, request.dtls_parameters)
            case AddCandidate():
                return await viewers.add_candidate(request.consumer_id, request.candidate)
            case CloseConsumer():
                return await viewers.close(request.consumer_id)
            case WhepOffer():
                return await viewers.whep_offer(request.session_id, request.offer_sdp)
            case WhepPatch():
                return await viewers.whep_patch(request.session_id, request.sdpfrag)
            case OfferSession():
                return await viewers.offer_session(request.session_id, request.client_id)
            case AnswerSession():
                return await viewers.answer_session(request.session_id, request.answer_sdp)

    async def tick(self) -> None:
        """Heartbeat work: renew leases, drop pipelines we no longer own, report metrics,
        and take over orphaned streams while there is room."""
        owned = await self.leases.renew(set(self.pipelines) | self._starting)
        for stream_id in list(self.pipelines):
            if stream_id not in owned and stream_id not in self._starting:
                logger.info("stream %s is no longer ours; stopping its pipeline", stream_id)
                pipeline = self.pipelines.pop(stream_id)
                await pipeline.stop()
        # A copy: streams start and stop during the awaits (the soak's node logged "heartbeat
        # failed: dictionary changed size during iteration" and skipped the beat's rest).
        for stream_id, pipeline in list(self.pipelines.items()):
            if self.pipelines.get(stream_id) is not pipeline:
                continue  # stopped meanwhile: nothing to report
            await self.streams.report_metrics(stream_id, self.node_id, pipeline.metrics())
            await pipeline.viewers.report()
        room = self.settings.media.node_capacity - self.load
        if room > 0 and not self.draining:
            await self.adopt(await self.leases.orphans(room))

    async def adopt(self, stream_ids: list[uuid.UUID]) -> int:
        """Take over the streams of a node that handed them over (or stopped renewing) while
        there is room; the number taken. Peers race by `StreamLeases.claim`: one wins."""
        # All at once: each take-over is a few database round trips before its ingest
        # starts, and one after another they added up to seconds for a full node's streams.
        # Seats are counted before the first await (`_starting`), so the capacity holds.
        results = await asyncio.gather(*(self.take_over(s) for s in stream_ids),
                                       return_exceptions=True)
        for stream_id, result in zip(stream_ids, results, strict=True):
            if isinstance(result, BaseException):  # one failure must not keep the others
                logger.error("could not take over stream %s: %r", stream_id, result)
        return sum(1 for r in results if r is True)

    async def resume(self) -> int:
        """At start: the streams still recorded under our node id (a restarted StatefulSet
        pod keeps its id) are ours to run again at once, not after their lease expires."""
        stale = await self.leases.mine()
        if stale:
            logger.warning("node %s restarted with %d streams of its previous life",
                           self.node_id, len(stale))
        taken = await self.adopt(stale)
        # No room for the rest: let the other nodes have them now.
        await self.leases.expire([s for s in stale if s not in self.pipelines])
        return taken

    async def shutdown(self) -> list[uuid.UUID]:
        """Take no new streams, stop every pipeline (its viewers' transports close: clients
        re-attach per the guide), then expire our leases so other nodes can take the
        streams at once; the streams handed over."""
        self.draining = True
        pipelines, self.pipelines = self.pipelines, {}
        started = time.monotonic()
        await asyncio.gather(*(p.stop() for p in pipelines.values()), return_exceptions=True)
        handed = await self.leases.release_all()
        logger.info("node %s stopped %d pipelines in %.2f s and released %d leases",
                    self.node_id, len(pipelines), time.monotonic() - started, len(handed))
        return handed

    async def live_snapshot(self, snapshot_id: uuid.UUID) -> None:
        """A snapshot of a stream this node runs, from its GOP cache."""
        row = await self.captures.snapshots.get(snapshot_id)
        pipeline = self.pipelines.get(row.stream_id)
        await self.captures.live_snapshot(
            row.id, pipeline.ingest.gop_cache if pipeline is not None else None)

    def viewers(self, stream_id: uuid.UUID) -> StreamViewers | None:
        """The viewers of a stream this node runs (None when it runs no such stream)."""
        pipeline = self.pipelines.get(stream_id)
        return pipeline.viewers if pipeline is not None else None
