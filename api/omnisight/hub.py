"""Fan-out of notifications to this API process's WebSocket connections.

One Redis pub/sub subscription per API process (core.notify's channel); each message is
offered to every connection that may see it. Offering never waits: every connection has a
bounded send queue, and a connection whose queue is full is dropped (close 4429) so one slow
client cannot slow the server or the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.notify import channel
from core.tokens import Principal

logger = logging.getLogger(__name__)

SEND_QUEUE_SIZE = 256
MAX_SUBSCRIPTIONS = 256
CLOSE_SLOW = 4429
# Which scope lets a connection receive each message type (`admin` receives all).
TYPE_SCOPES = {
    "camera_status": "cameras:read",
    "recording_status": "recordings:read",
    "event": "events:read",
    "system_notification": "system:read",
}


def allowed_types(principal: Principal) -> frozenset[str]:
    """The message types a token may receive."""
    if "admin" in principal.scopes:
        return frozenset(TYPE_SCOPES)
    return frozenset(t for t, scope in TYPE_SCOPES.items() if scope in principal.scopes)


@dataclass(eq=False)
class Connection:
    """One WebSocket client: what it may see, its camera subscriptions, its send queue."""

    principal: Principal
    types: frozenset[str]
    queue: asyncio.Queue[str] = field(
        default_factory=lambda: asyncio.Queue(maxsize=SEND_QUEUE_SIZE)
    )
    cameras: set[str] = field(default_factory=set)
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int = 1000
    close_reason: str = ""

    def offer(self, kind: str, camera_id: str | None, text: str) -> None:
        """Queue `text` if this connection should get it; drop the connection when full."""
        if self.closing.is_set() or kind not in self.types:
            return
        if kind == "event" and camera_id not in self.cameras:
            return
        self.send(text)

    def send(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            logger.warning("WebSocket client of %s %s too slow (%d messages queued): dropped",
                           self.principal.kind, self.principal.client_id, self.queue.qsize())
            self.close(CLOSE_SLOW, "Too slow: the send queue is full")

    def close(self, code: int, reason: str) -> None:
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()


class WsHub:
    """Receives the installation's notifications from Redis and hands them to connections."""

    RETRY_S = 1.0
    READ_TIMEOUT_S = 1.0  # well under redis-py's 5 s socket timeout

    def __init__(self, redis_url: str, namespace: str) -> None:
        self._url = redis_url
        self._channel = channel(namespace)
        self._connections: set[Connection] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def connections(self) -> int:
        return len(self._connections)

    def add(self, connection: Connection) -> None:
        self._connections.add(connection)

    def remove(self, connection: Connection) -> None:
        self._connections.discard(connection)

    async def start(self, timeout_s: float = 10.0) -> None:
        """Subscribe; returns once the subscription is active."""
        self._task = asyncio.create_task(self._run(), name="ws-hub")
        await asyncio.wait_for(self._ready.wait(), timeout_s)

    async def stop(self) -> None:
        for connection in list(self._connections):
            connection.close(1001, "Server shutting down")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            client = Redis.from_url(self._url)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._ready.set()
                while True:
                    message = await pubsub.get_message(timeout=self.READ_TIMEOUT_S)
                    if message is not None and message.get("type") == "message":
                        self.dispatch(message["data"])
                        await asyncio.sleep(0)  # let the senders run between messages
            except (RedisError, OSError) as exc:
                logger.warning("notification subscription lost (%s); retrying", exc)
                await asyncio.sleep(self.RETRY_S)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(Exception):
                    await client.aclose()

    def dispatch(self, raw: bytes | str) -> None:
        """Offer one published message to every connection."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            parsed: Any = json.loads(text)
            kind = parsed["type"]
            data = parsed.get("data") or {}
            camera_id = data.get("cameraId") if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignored a malformed notification")
            return
        for connection in list(self._connections):
            connection.offer(str(kind), None if camera_id is None else str(camera_id).lower(),
                             text)
