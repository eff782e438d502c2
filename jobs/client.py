"""The API's side of the job runner: enqueue jobs and wait for their results.

Every wait honours its own deadline, whatever the Redis client's socket timeout is: the
results backend is read in blocking steps of at most `RESULT_STEP_S` (redis-py's default
socket timeout is 5 s, and a blocking read longer than that fails with a TimeoutError instead
of waiting). A Redis that cannot be reached is a 503, never a 500.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import ResultFailure, ResultMissing, ResultTimeout

from core.errors import MediaInternalError, MediaUnavailable
from core.nodes import NodeInfo

# One blocking read of the results backend. Dramatiq's Redis backend blocks in whole
# seconds (BRPOPLPUSH); below one second left, the wait polls instead.
RESULT_STEP_S = 2
POLL_S = 0.05


def queue_unreachable(exc: redis.RedisError) -> MediaUnavailable:
    """The error a caller sees when Redis (broker or results) does not answer."""
    return MediaUnavailable("The job queue is not reachable", type(exc).__name__)


class JobClient:
    """Sends messages to actors; `call_node` waits for a node's answer within a deadline."""

    def __init__(self, broker: RedisBroker, actors: dict[str, dramatiq.Actor[Any, Any]]) -> None:
        self._broker = broker
        self._actors = actors

    async def enqueue(self, actor_name: str, *args: Any, **kwargs: Any) -> dramatiq.Message[Any]:
        message = self._actors[actor_name].message(*args, **kwargs)
        return await self._send(message)

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

    async def send_to_node(self, node: NodeInfo, actor_name: str, *args: Any) -> None:
        """Enqueue `actor_name` on `node`'s control queue without waiting for it."""
        await self._send(self._actors[actor_name].message(*args).copy(queue_name=node.queue_name))

    async def call_node(
        self, node: NodeInfo, actor_name: str, *args: Any, deadline_s: float = 10.0
    ) -> Any:
        """Run `actor_name` on `node`'s control queue; 503 when no answer comes in time."""
        message = self._actors[actor_name].message(*args).copy(queue_name=node.queue_name)
        return await self.wait(await self._send(message), deadline_s)
