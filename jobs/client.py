"""The API's side of the job runner: enqueue jobs and wait for their results.

Every wait honours its own deadline, whatever the Redis client's socket timeout is: the
results backend is read in blocking steps of at most `RESULT_STEP_S` (redis-py's default
socket timeout is 5 s, and a blocking read longer than that fails with a TimeoutError instead
of waiting). A Redis that cannot be reached is a 503, never a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import dq_name
from dramatiq.results import ResultFailure, ResultMissing, ResultTimeout

from core.errors import MediaInternalError, MediaUnavailable
from core.nodes import NodeInfo
from jobs.broker import DETECT_QUEUE
from jobs.node.protocol import (
    AddCandidate,
    AnswerSession,
    CloseConsumer,
    Connect,
    Connected,
    Consume,
    Consumed,
    DetectFrame,
    Done,
    Handover,
    LiveSnapshot,
    Message,
    OfferSession,
    Ping,
    Pong,
    Probed,
    ProbeFailed,
    SessionOffer,
    Started,
    StartStream,
    Stopped,
    StopStream,
    Validate,
    WhepAnswer,
    WhepOffer,
    WhepPatch,
    decode_reply,
    encode,
)

# One blocking read of the results backend. Dramatiq's Redis backend blocks in whole
# seconds (BRPOPLPUSH); below one second left, the wait polls instead.
RESULT_STEP_S = 2
POLL_S = 0.05
VIEWER_DEADLINE_S = 10.0  # the guide's consumer attach and DTLS connect timeouts

R = TypeVar("R")
DETECT_ACTOR = "detect_frame"  # declared by detection workers
logger = logging.getLogger(__name__)


def queue_unreachable(exc: redis.RedisError) -> MediaUnavailable:
    """The error a caller sees when Redis (broker or results) does not answer."""
    return MediaUnavailable("The job queue is not reachable", type(exc).__name__)


@dataclass(frozen=True, slots=True)
class Pending(Generic[R]):
    """A request sent without waiting; `JobClient.result` waits for its reply."""

    message: dramatiq.Message[Any]
    reply: Any  # the reply struct (or union of structs) to decode


class JobClient:
    """Typed calls to the job processes: each method sends one request of
    `jobs.node.protocol` and, for calls, waits within a deadline for the typed reply."""

    def __init__(self, broker: RedisBroker, actors: dict[str, dramatiq.Actor[Any, Any]]) -> None:
        self._broker = broker
        self._actors = actors

    # -- media nodes ----------------------------------------------------------------------

    async def start_stream(self, stream_id: uuid.UUID) -> Pending[Started]:
        """Offer a stream's start to every media node (the shared start queue)."""
        message = self._message("start_stream", StartStream(stream_id=stream_id))
        return Pending(await self._send(message), Started)

    async def stop_stream(self, node: NodeInfo, stream_id: uuid.UUID,
                          deadline_s: float) -> Stopped:
        reply: Stopped = await self._call(node, "stop_stream", StopStream(stream_id=stream_id),
                                          Stopped, deadline_s)
        return reply

    async def ping(self, node: NodeInfo, sent_at: float, deadline_s: float) -> Pong:
        reply: Pong = await self._call(node, "node_ping", Ping(sent_at=sent_at), Pong,
                                       deadline_s)
        return reply

    async def consume(self, node: NodeInfo, request: Consume,
                      deadline_s: float = VIEWER_DEADLINE_S) -> Consumed:
        reply: Consumed = await self._call(node, "viewer_op", request, Consumed, deadline_s)
        return reply

    async def connect(self, node: NodeInfo, request: Connect,
                      deadline_s: float = VIEWER_DEADLINE_S) -> Connected:
        reply: Connected = await self._call(node, "viewer_op", request, Connected, deadline_s)
        return reply

    async def add_candidate(self, node: NodeInfo, request: AddCandidate,
                            deadline_s: float = VIEWER_DEADLINE_S) -> Done:
        reply: Done = await self._call(node, "viewer_op", request, Done, deadline_s)
        return reply

    async def close_consumer(self, node: NodeInfo, request: CloseConsumer,
                             deadline_s: float = VIEWER_DEADLINE_S) -> Done:
        reply: Done = await self._call(node, "viewer_op", request, Done, deadline_s)
        return reply

    async def whep_offer(self, node: NodeInfo, request: WhepOffer,
                         deadline_s: float = VIEWER_DEADLINE_S) -> WhepAnswer:
        reply: WhepAnswer = await self._call(node, "viewer_op", request, WhepAnswer, deadline_s)
        return reply

    async def whep_patch(self, node: NodeInfo, request: WhepPatch,
                         deadline_s: float = VIEWER_DEADLINE_S) -> Done:
        reply: Done = await self._call(node, "viewer_op", request, Done, deadline_s)
        return reply

    async def offer_session(self, node: NodeInfo, request: OfferSession,
                            deadline_s: float = VIEWER_DEADLINE_S) -> SessionOffer:
        reply: SessionOffer = await self._call(node, "viewer_op", request, SessionOffer,
                                               deadline_s)
        return reply

    async def answer_session(self, node: NodeInfo, request: AnswerSession,
                             deadline_s: float = VIEWER_DEADLINE_S) -> Done:
        reply: Done = await self._call(node, "viewer_op", request, Done, deadline_s)
        return reply

    async def live_snapshot(self, node: NodeInfo, snapshot_id: uuid.UUID) -> None:
        """Have the stream's node make a live snapshot (not waited for: the row says)."""
        message = self._message("live_snapshot", LiveSnapshot(snapshot_id=snapshot_id))
        await self._send(message.copy(queue_name=node.queue_name))

    async def handover(self, node: NodeInfo, request: Handover) -> None:
        """Tell another node to take over streams this one released (not waited for)."""
        message = self._message("handover", request)
        await self._send(message.copy(queue_name=node.queue_name))

    # -- workers -------------------------------------------------------------------------

    async def validate(self, url: str, transport: str, deadline_s: float) -> Probed | ProbeFailed:
        """Probe a camera on a worker and wait for what it found."""
        message = self._message("validate_rtsp", Validate(url=url, transport=transport))
        reply: Probed | ProbeFailed = await self.result(
            Pending(await self._send(message), Probed | ProbeFailed), deadline_s)
        return reply

    async def historical_snapshot(self, snapshot_id: uuid.UUID) -> None:
        await self._send(self._actors["historical_snapshot"].message(str(snapshot_id)))

    async def export_bookmark(self, bookmark_id: uuid.UUID) -> None:
        await self._send(self._actors["export_bookmark"].message(str(bookmark_id)))

    async def export_recording(self, session_id: uuid.UUID) -> None:
        await self._send(self._actors["export_recording"].message(str(session_id)))

    async def purge_recordings(self) -> None:
        await self._send(self._actors["purge_recordings"].message())

    async def prune_media_nodes(self) -> None:
        await self._send(self._actors["prune_media_nodes"].message())

    # -- plumbing ------------------------------------------------------------------------

    def detect_depth(self) -> int:
        """Object-detection jobs pending: on the `detect` queue (waiting or running) and on
        its delay queue (`detect.DQ`: failed jobs waiting for their retry)."""
        pipe = self._broker.client.pipeline(transaction=False)
        for queue in (DETECT_QUEUE, dq_name(DETECT_QUEUE)):
            pipe.hlen(f"{self._broker.namespace}:{queue}.msgs")
        return sum(int(n) for n in pipe.execute())

    def send_detection(self, job: DetectFrame, max_depth: int) -> bool:
        """Enqueue an object-detection job on the `detect` queue, unless `max_depth` jobs
        are already pending (`detect_depth`); False when skipped. Blocking: for a node's
        detection thread, never the event loop."""
        try:
            if self.detect_depth() >= max_depth:
                return False
            self._broker.enqueue(dramatiq.Message(
                queue_name=DETECT_QUEUE, actor_name=DETECT_ACTOR, args=(encode(job),),
                kwargs={}, options={}))
        except redis.RedisError as exc:
            logger.warning("detect queue not reachable: %s", exc)
            return False
        return True

    async def result(self, pending: Pending[R], deadline_s: float) -> R:
        """The typed reply of a pending request; a refusal is raised as its error."""
        reply: R = decode_reply(await self.wait(pending.message, deadline_s), pending.reply)
        return reply

    def _message(self, actor_name: str, request: Message) -> dramatiq.Message[Any]:
        return self._actors[actor_name].message(encode(request))

    async def _call(self, node: NodeInfo, actor_name: str, request: Message, reply: Any,
                    deadline_s: float) -> Any:
        """Run `actor_name` on `node`'s control queue; 503 when no answer comes in time."""
        message = self._message(actor_name, request).copy(queue_name=node.queue_name)
        return await self.result(Pending(await self._send(message), reply), deadline_s)

    async def _send(self, message: dramatiq.Message[Any]) -> dramatiq.Message[Any]:
        try:
            return await asyncio.to_thread(self._broker.enqueue, message)
        except redis.RedisError as exc:
            raise queue_unreachable(exc) from None

    async def wait(self, message: dramatiq.Message[Any], deadline_s: float) -> Any:
        """The result of an enqueued message; 503 when none comes within the deadline."""
        end = time.monotonic() + deadline_s
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise MediaUnavailable(
                    "No media node answered in time", f"{message.actor_name}, {deadline_s:g} s"
                )
            try:
                if left >= 1:
                    step_ms = int(min(left, RESULT_STEP_S)) * 1000
                    return await asyncio.to_thread(
                        message.get_result, block=True, timeout=step_ms)
                return await asyncio.to_thread(message.get_result, block=False)
            except ResultTimeout:
                continue
            except ResultMissing:
                await asyncio.sleep(min(POLL_S, left))
            except ResultFailure as exc:
                raise MediaInternalError("The job failed", str(exc)) from None
            except redis.RedisError as exc:
                raise queue_unreachable(exc) from None
