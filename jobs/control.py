"""Starting and stopping streams from the API: enqueue to media nodes, wait for the outcome.

The one place that knows how start-stream behaves: exactly one ingest per camera (the
database admits one active stream), an answer when the stream is LIVE (30 s at most), the
guide's error codes otherwise, and `reconnect` for a camera that is already streaming.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from core.errors import (
    MediaInternalError,
    MediaUnavailable,
    RtspConnectionFailed,
    StreamError,
    StreamStopFailed,
    stream_error,
)
from core.nodes import NodeInfo, NodeRegistry
from core.stream_states import StreamState
from core.streams import StreamRecord, StreamService
from jobs.client import JobClient, Pending
from jobs.node.protocol import Started

logger = logging.getLogger(__name__)

START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0


@dataclass(frozen=True, slots=True)
class StartResult:
    """The stream after start-stream, and whether it was already running."""

    stream: StreamRecord
    reconnect: bool


def start_failure(stream: StreamRecord) -> StreamError:
    """The error a failed start left on the stream: its code from `error_code`, its message
    from `last_error` (which begins with that code, for clients that read it)."""
    text = stream.last_error or "Stream start failed"
    if stream.error_code is None:
        return RtspConnectionFailed(text)
    return stream_error(stream.error_code, text.removeprefix(f"{stream.error_code}: ") or text)


class StreamControl:
    """Start and stop streams through the media nodes."""

    def __init__(self, streams: StreamService, nodes: NodeRegistry, jobs: JobClient) -> None:
        self._streams = streams
        self._nodes = nodes
        self._jobs = jobs

    async def begin(
        self, camera_id: uuid.UUID
    ) -> tuple[StreamRecord, bool, Pending[Started] | None]:
        """Create the camera's stream (or find the active one) and enqueue its start.

        Returns (stream, created, pending start); the pending start is None when the stream
        existed.
        """
        row, created = await self._streams.create(camera_id)
        if not created:
            return row, False, None
        if not await self._nodes.alive():
            await self._abort(row.id, MediaUnavailable("no media node is running"))
            raise MediaUnavailable("No media node is running", "0 nodes with a fresh heartbeat")
        return row, True, await self._jobs.start_stream(row.id)

    async def start(
        self, camera_id: uuid.UUID, deadline_s: float = START_DEADLINE_S
    ) -> StartResult:
        """start-stream: answer once the stream is LIVE, or with the reason it is not."""
        started = time.monotonic()
        row, created, pending = await self.begin(camera_id)
        if pending is not None:
            try:
                await self._jobs.result(pending, deadline_s)
            except MediaUnavailable:
                await self._abort(row.id, MediaUnavailable("no media node answered"))
                raise
        remaining = max(0.5, deadline_s - (time.monotonic() - started))
        live = await self._wait_live(row.id, remaining)
        return StartResult(stream=live, reconnect=not created)

    async def _wait_live(self, stream_id: uuid.UUID, deadline_s: float) -> StreamRecord:
        """Poll until LIVE with its codec known; a start that failed meanwhile surfaces its
        error. The ingest may report LIVE before the start job has written the stream's
        producer and codec (in that order), and the answer names both."""
        end = time.monotonic() + deadline_s
        while True:
            row = await self._streams.get(stream_id)
            if row.state is StreamState.LIVE and row.codec_config is not None:
                return row
            if row.state in (StreamState.STOPPED, StreamState.CLOSED):
                raise start_failure(row)
            if time.monotonic() >= end:
                if row.state is StreamState.ERROR:
                    raise start_failure(row)
                raise MediaUnavailable("Stream did not become LIVE in time",
                                       f"state {row.state.value} after {deadline_s:.0f} s")
            await asyncio.sleep(0.1)

    async def stop(self, stream_id: uuid.UUID) -> bool:
        """Stop through the owning node; close in the database when no node answers.

        Returns False when the stream was already closed.
        """
        row = await self._streams.get(stream_id)
        if row.state is StreamState.CLOSED:
            return False
        owner = await self._alive_owner(row)
        failed: StreamStopFailed | None = None
        if owner is not None:
            try:
                await self._jobs.stop_stream(owner, stream_id, deadline_s=STOP_DEADLINE_S)
            except MediaUnavailable:
                # The node will see at its next lease renewal that the stream is closed.
                logger.warning("node %s did not answer stop for %s", owner.node_id, stream_id)
            except MediaInternalError as exc:
                # The node answered that stopping failed. The stream is closed all the same
                # (the node drops what it no longer owns at its next lease renewal), and the
                # caller is told: STREAM_STOP_FAILED (guide §6.3).
                failed = StreamStopFailed("The media node failed to stop the stream",
                                          exc.detail)
        await self._streams.close(stream_id)
        if failed is not None:
            raise failed
        return True

    async def owner(self, stream: StreamRecord) -> NodeInfo:
        """The live media node that runs `stream` (503 when there is none)."""
        node = await self._alive_owner(stream)
        if node is None:
            raise MediaUnavailable("The stream's media node is not available",
                                   f"stream {stream.id}")
        return node

    async def _alive_owner(self, stream: StreamRecord) -> NodeInfo | None:
        return next((n for n in await self._nodes.alive() if n.node_id == stream.node_id), None)

    async def _abort(self, stream_id: uuid.UUID, reason: StreamError) -> None:
        await self._streams.fail(stream_id, reason)
