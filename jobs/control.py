"""Starting and stopping streams from the API: enqueue to media nodes, wait for the outcome.

The one place that knows how start-stream behaves: exactly one ingest per camera (the
database admits one active stream), an answer when the stream is LIVE (30 s at most), the
guide's error codes otherwise, and `reconnect` for a camera that is already streaming.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from core.errors import (
    Conflict,
    InvalidInput,
    MediaUnavailable,
    NotFound,
    RtspConnectionFailed,
    stream_error,
)
from core.nodes import NodeRegistry
from core.stream_states import StreamState
from core.streams import StreamService
from jobs.client import JobClient

logger = logging.getLogger(__name__)

START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0
VIEWER_DEADLINE_S = 10.0  # the guide's consumer attach and DTLS connect timeouts


@dataclass(frozen=True, slots=True)
class StartResult:
    """The stream after start-stream, and whether it was already running."""

    stream: dict[str, Any]
    reconnect: bool


def _error_from_last(row: dict[str, Any]) -> Exception:
    """Rebuild the guide error a failed start left in `last_error` ("CODE: message")."""
    text = row.get("last_error") or "Stream start failed"
    code, _, message = text.partition(": ")
    if code.isupper() and "_" in code:
        return stream_error(code, message or text)
    return RtspConnectionFailed(text)


class StreamControl:
    """Start and stop streams through the media nodes."""

    def __init__(self, streams: StreamService, nodes: NodeRegistry, jobs: JobClient) -> None:
        self._streams = streams
        self._nodes = nodes
        self._jobs = jobs

    async def begin(self, camera_id: uuid.UUID) -> tuple[dict[str, Any], bool, Any]:
        """Create the camera's stream (or find the active one) and enqueue its start.

        Returns (stream, created, message); `message` is None when the stream existed.
        """
        row, created = await self._streams.create(camera_id)
        if not created:
            return row, False, None
        if not await self._nodes.alive():
            await self._abort(row["id"], "MEDIASOUP_UNAVAILABLE: no media node is running")
            raise MediaUnavailable("No media node is running", "0 nodes with a fresh heartbeat")
        message = await self._jobs.enqueue("start_stream", str(row["id"]))
        return row, True, message

    async def start(
        self, camera_id: uuid.UUID, deadline_s: float = START_DEADLINE_S
    ) -> StartResult:
        """start-stream: answer once the stream is LIVE, or with the reason it is not."""
        started = time.monotonic()
        row, created, message = await self.begin(camera_id)
        if created:
            try:
                outcome = await self._jobs.wait(message, deadline_s)
            except MediaUnavailable:
                await self._abort(row["id"], "MEDIASOUP_UNAVAILABLE: no media node answered")
                raise
            if not outcome.get("ok"):
                raise stream_error(outcome.get("error_code", "STREAM_START_FAILED"),
                                   outcome.get("message", "Stream start failed"),
                                   outcome.get("detail"))
        remaining = max(0.5, deadline_s - (time.monotonic() - started))
        live = await self._wait_live(row["id"], remaining)
        return StartResult(stream=live, reconnect=not created)

    async def _wait_live(self, stream_id: uuid.UUID, deadline_s: float) -> dict[str, Any]:
        """Poll until LIVE; a start that failed meanwhile surfaces its error."""
        end = time.monotonic() + deadline_s
        while True:
            row = await self._streams.get(stream_id)
            state = StreamState(row["state"])
            if state is StreamState.LIVE:
                return row
            if state in (StreamState.STOPPED, StreamState.CLOSED):
                raise _error_from_last(row)
            if time.monotonic() >= end:
                if state is StreamState.ERROR:
                    raise _error_from_last(row)
                raise MediaUnavailable("Stream did not become LIVE in time",
                                       f"state {state.value} after {deadline_s:.0f} s")
            await asyncio.sleep(0.1)

    async def stop(self, stream_id: uuid.UUID) -> bool:
        """Stop through the owning node; close in the database when no node answers.

        Returns False when the stream was already closed.
        """
        row = await self._streams.get(stream_id)
        if row["state"] == StreamState.CLOSED.value:
            return False
        owner = next((n for n in await self._nodes.alive() if n.node_id == row["node_id"]), None)
        if owner is not None:
            try:
                await self._jobs.call_node(owner, "stop_stream", str(stream_id),
                                           deadline_s=STOP_DEADLINE_S)
            except MediaUnavailable:
                # The node will see at its next lease renewal that the stream is closed.
                logger.warning("node %s did not answer stop for %s", owner.node_id, stream_id)
        await self._streams.close(stream_id)
        return True

    async def on_owner(
        self, stream: dict[str, Any], op: str, consumer_id: uuid.UUID, *args: Any,
        deadline_s: float = VIEWER_DEADLINE_S,
    ) -> dict[str, Any]:
        """Run a viewer operation on the node that owns `stream`; its refusals become 4xx."""
        owner = next((n for n in await self._nodes.alive() if n.node_id == stream["node_id"]),
                     None)
        if owner is None:
            raise MediaUnavailable("The stream's media node is not available",
                                   f"stream {stream['id']}")
        result: dict[str, Any] = await self._jobs.call_node(
            owner, "viewer_op", str(stream["id"]), op, str(consumer_id), *args,
            deadline_s=deadline_s,
        )
        if not result.get("ok"):
            refused = {400: InvalidInput, 404: NotFound, 409: Conflict}
            raise refused.get(int(result.get("status", 409)), Conflict)(str(result["detail"]))
        return result

    async def _abort(self, stream_id: uuid.UUID, reason: str) -> None:
        with contextlib.suppress(Conflict):
            await self._streams.transition(stream_id, StreamState.ERROR, last_error=reason)
        with contextlib.suppress(Conflict):
            await self._streams.close(stream_id)
