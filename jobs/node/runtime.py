"""What a media node does with streams: start, stop, take over, and keep its leases.

All of it runs on the node's event loop; actors reach it through `jobs.context`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from typing import Any

from core.clock import utcnow
from core.credentials import CredentialBox
from core.devices import DeviceService
from core.errors import Conflict, StreamError
from core.leases import StreamLeases
from core.recordings import RecordingIndex
from core.settings import Settings
from core.stream_states import StreamState
from core.streams import StreamService
from core.tables import Producer, Stream
from jobs.captures import Captures
from jobs.pipeline import StreamPipeline, codec_config
from jobs.viewers import StreamViewers

logger = logging.getLogger(__name__)


class NodeFull(Exception):
    """This node runs as many streams as its capacity allows; another node should take it."""


def outcome_error(exc: StreamError) -> dict[str, Any]:
    return {"ok": False, "error_code": exc.error_code, "message": exc.message,
            "detail": exc.detail}


class MediaNodeRuntime:
    """The streams one node owns, and the operations on them."""

    def __init__(self, settings: Settings, node_id: str) -> None:
        self.settings = settings
        self.node_id = node_id
        self.leases = StreamLeases(node_id, settings.media.lease_s)
        self.streams = StreamService()
        self.devices = DeviceService(CredentialBox(settings.auth.credentials_key))
        self.index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
        self.pipelines: dict[uuid.UUID, StreamPipeline] = {}
        self.captures = Captures(settings)
        self._starting: set[uuid.UUID] = set()

    @property
    def load(self) -> int:
        return len(self.pipelines) + len(self._starting)

    def has_capacity(self) -> bool:
        return self.load < self.settings.media.node_capacity

    async def _pipeline_for(self, stream: dict[str, Any]) -> StreamPipeline:
        device = await self.devices.get(stream["camera_id"])
        return StreamPipeline(
            stream["id"], self.devices.source_url(device), device["rtsp_transport"],
            self.settings, self.index, await self.index.next_sequence(stream["id"]),
        )

    async def start(self, stream_id: uuid.UUID) -> dict[str, Any]:
        """The start job: claim the stream, open the camera, go LIVE, or close with the error."""
        if not self.has_capacity():
            raise NodeFull(f"node {self.node_id} is full")
        if not await self.leases.claim(stream_id):
            return {"ok": True, "owner": "other"}
        if stream_id in self.pipelines:
            return {"ok": True, "owner": self.node_id}
        self._starting.add(stream_id)
        try:
            stream = await self.streams.get(stream_id)
            pipeline = await self._pipeline_for(stream)
            try:
                info = await pipeline.open()
            except StreamError as exc:
                logger.info("stream %s failed to start: %s", stream_id, exc.message)
                await self._close_failed(stream_id, exc)
                return outcome_error(exc)
            self.pipelines[stream_id] = pipeline
        finally:
            self._starting.discard(stream_id)
        await self._ensure_producer(stream_id)
        await Stream.update({Stream.codec_config: codec_config(info)}).where(Stream.id == stream_id)
        with contextlib.suppress(Conflict):  # already LIVE when the ingest reported first
            await self.streams.transition(stream_id, StreamState.READY)
        await pipeline.mark(StreamState.LIVE, last_error=None)
        state = (await self.streams.get(stream_id))["state"]
        return {"ok": state == StreamState.LIVE.value, "owner": self.node_id, "state": state,
                **({} if state == StreamState.LIVE.value else {
                    "error_code": "STREAM_START_FAILED", "message": f"stream is {state}",
                    "detail": None})}

    async def take_over(self, stream_id: uuid.UUID) -> bool:
        """Restart a stream whose node stopped renewing its lease; True when we took it."""
        if stream_id in self.pipelines or stream_id in self._starting:
            return False
        if not self.has_capacity() or not await self.leases.claim(stream_id):
            return False
        stream = await self.streams.get(stream_id)
        logger.warning("taking over stream %s (was on %s)", stream_id, stream["node_id"])
        await self.streams.close_consumers(stream_id)  # their transports died with the node
        if stream["state"] in (StreamState.LIVE.value, StreamState.ERROR.value):
            with contextlib.suppress(Conflict):
                await self.streams.transition(stream_id, StreamState.INITIALIZING,
                                              last_error="media node lost; restarting")
        pipeline = await self._pipeline_for(stream)
        self.pipelines[stream_id] = pipeline
        video = (stream["codec_config"] or {}).get("video") or {}
        pipeline.start(video.get("profile"))
        return True

    async def stop(self, stream_id: uuid.UUID) -> dict[str, Any]:
        """The stop job: end the pipeline, then STOPPED → CLOSED with consumers closed."""
        pipeline = self.pipelines.pop(stream_id, None)
        if pipeline is not None:
            await pipeline.stop()
        await self.streams.close(stream_id)
        await self.leases.release(stream_id)
        return {"ok": True, "stopped": pipeline is not None}

    async def tick(self) -> None:
        """Heartbeat work: renew leases, drop pipelines we no longer own, report metrics,
        and take over orphaned streams while there is room."""
        owned = await self.leases.renew()
        for stream_id in list(self.pipelines):
            if stream_id not in owned and stream_id not in self._starting:
                logger.info("stream %s is no longer ours; stopping its pipeline", stream_id)
                pipeline = self.pipelines.pop(stream_id)
                await pipeline.stop()
        now = utcnow()
        for stream_id, pipeline in self.pipelines.items():
            await Stream.update({Stream.metrics: pipeline.metrics(), Stream.checked_at: now}).where(
                (Stream.id == stream_id) & (Stream.node_id == self.node_id)
            )
            await pipeline.viewers.report()
        room = self.settings.media.node_capacity - self.load
        if room > 0:
            for stream_id in await self.leases.orphans(room):
                await self.take_over(stream_id)

    async def shutdown(self) -> None:
        """Stop every pipeline and hand the streams to other nodes at once."""
        pipelines, self.pipelines = self.pipelines, {}
        await asyncio.gather(*(p.stop() for p in pipelines.values()), return_exceptions=True)
        await self.leases.release_all()

    async def _close_failed(self, stream_id: uuid.UUID, exc: StreamError) -> None:
        with contextlib.suppress(Conflict):
            await self.streams.transition(stream_id, StreamState.ERROR,
                                          last_error=f"{exc.error_code}: {exc.message}")
        await self.streams.close(stream_id)
        await self.leases.release(stream_id)

    async def _ensure_producer(self, stream_id: uuid.UUID) -> None:
        """One producer per stream for its whole life (a unique index makes it so), so its
        ids stay the same across reconnects and failover."""
        if await Producer.exists().where(Producer.stream_id == stream_id):
            await Producer.update({Producer.state: "ACTIVE"}).where(
                Producer.stream_id == stream_id)
            return
        with contextlib.suppress(Exception):  # created meanwhile: the index refused a twin
            await Producer(
                id=uuid.uuid4(), stream_id=stream_id,
                mediasoup_id=f"producer-{secrets.token_hex(8)}",
                transport_id=f"transport-{secrets.token_hex(8)}",
                state="ACTIVE", ssrc=secrets.randbelow(900_000_000) + 100_000_000,
                created_at=utcnow(),
            ).save()

    def viewers(self, stream_id: uuid.UUID) -> StreamViewers | None:
        """The viewers of a stream this node runs (None when it runs no such stream)."""
        pipeline = self.pipelines.get(stream_id)
        return pipeline.viewers if pipeline is not None else None
