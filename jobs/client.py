"""The API's side of the job runner: enqueue jobs and wait for media-node answers."""

from __future__ import annotations

import asyncio
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import ResultFailure, ResultMissing, ResultTimeout

from core.errors import MediaInternalError, MediaUnavailable
from core.nodes import NodeInfo


class JobClient:
    """Sends messages to actors; `call_node` waits for a node's answer within a deadline."""

    def __init__(self, broker: RedisBroker, actors: dict[str, dramatiq.Actor[Any, Any]]) -> None:
        self._broker = broker
        self._actors = actors

    async def enqueue(self, actor_name: str, *args: Any, **kwargs: Any) -> dramatiq.Message[Any]:
        message = self._actors[actor_name].message(*args, **kwargs)
        return await asyncio.to_thread(self._broker.enqueue, message)

    async def wait(self, message: dramatiq.Message[Any], deadline_s: float) -> Any:
        """The result of an enqueued message; 503 when none comes within the deadline."""
        try:
            return await asyncio.to_thread(
                message.get_result, block=True, timeout=int(deadline_s * 1000)
            )
        except (ResultTimeout, ResultMissing):
            raise MediaUnavailable(
                "No media node answered in time", f"{message.actor_name}, {deadline_s:g} s"
            ) from None
        except ResultFailure as exc:
            raise MediaInternalError("The job failed", str(exc)) from None

    async def send_to_node(self, node: NodeInfo, actor_name: str, *args: Any) -> None:
        """Enqueue `actor_name` on `node`'s control queue without waiting for it."""
        message = self._actors[actor_name].message(*args).copy(queue_name=node.queue_name)
        await asyncio.to_thread(self._broker.enqueue, message)

    async def call_node(
        self, node: NodeInfo, actor_name: str, *args: Any, deadline_s: float = 10.0
    ) -> Any:
        """Run `actor_name` on `node`'s control queue; 503 when no answer comes in time."""
        message = self._actors[actor_name].message(*args).copy(queue_name=node.queue_name)
        await asyncio.to_thread(self._broker.enqueue, message)
        return await self.wait(message, deadline_s)
