"""Real-time notifications for WebSocket clients (OmniSight `/api/v1/ws`), through Redis.

The one way any process (API, worker, media node) tells connected clients that something
happened: build a message with one of the functions below and `publish` it (asyncio) or
`publish_sync` it (threads, Dramatiq actors). Every API process subscribes to the channel and
delivers each message to its own connections (rules in docs/omnisight.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from core.clock import iso_ms, utcnow
from core.errors import InvalidInput

logger = logging.getLogger(__name__)

MESSAGE_TYPES = ("camera_status", "recording_status", "event", "system_notification")
LEVELS = ("info", "warning", "error", "critical")
MAX_MESSAGE_BYTES = 64 * 1024


def channel(namespace: str) -> str:
    """The Redis pub/sub channel of one VAS installation (its Redis namespace)."""
    return f"{namespace}:omnisight:ws"


def _when(value: datetime | None) -> str:
    return iso_ms(value or utcnow()) or ""


def camera_status(camera_id: uuid.UUID | str, status: str,
                  timestamp: datetime | None = None) -> dict[str, Any]:
    """A camera went online, offline or into error."""
    return {"type": "camera_status", "data": {
        "cameraId": str(camera_id), "status": status, "timestamp": _when(timestamp)}}


def recording_status(
    recording_id: uuid.UUID | str, camera_id: uuid.UUID | str, status: str,
    start_time: datetime | None, end_time: datetime | None, timestamp: datetime | None = None,
) -> dict[str, Any]:
    """A recording started, completed or failed."""
    return {"type": "recording_status", "data": {
        "id": str(recording_id), "cameraId": str(camera_id), "status": status,
        "startTime": iso_ms(start_time), "endTime": iso_ms(end_time),
        "timestamp": _when(timestamp)}}


def event(
    event_id: uuid.UUID | str, camera_id: uuid.UUID | str, camera_name: str,
    recording_id: uuid.UUID | str | None, timestamp: datetime, event_type: str,
    confidence: float, thumbnail_path: str | None,
) -> dict[str, Any]:
    """A detection event (delivered only to connections subscribed to its camera)."""
    return {"type": "event", "data": {
        "id": str(event_id), "cameraId": str(camera_id), "cameraName": camera_name,
        "recordingId": None if recording_id is None else str(recording_id),
        "timestamp": _when(timestamp), "type": event_type, "confidence": confidence,
        "thumbnailPath": thumbnail_path}}


def system_notification(level: str, message: str, notification_id: uuid.UUID | str | None = None,
                        timestamp: datetime | None = None) -> dict[str, Any]:
    """A message for every connected client (storage nearly full, a node lost, …)."""
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of: {', '.join(LEVELS)}")
    return {"type": "system_notification", "data": {
        "id": str(notification_id or uuid.uuid4()), "level": level, "message": message,
        "timestamp": _when(timestamp)}}


def encode(message: dict[str, Any]) -> str:
    """The wire form of a message; refuses unknown types and oversized messages."""
    if message.get("type") not in MESSAGE_TYPES or not isinstance(message.get("data"), dict):
        raise InvalidInput(f"a notification is {{type, data}} with type one of: "
                           f"{', '.join(MESSAGE_TYPES)}")
    text = json.dumps(message, separators=(",", ":"), default=str)
    if len(text) > MAX_MESSAGE_BYTES:
        raise InvalidInput(f"a notification must encode to at most {MAX_MESSAGE_BYTES} bytes")
    return text


async def publish(client: AsyncRedis, namespace: str, message: dict[str, Any]) -> int:
    """Publish from asyncio code; returns how many API processes received it."""
    return int(await client.publish(channel(namespace), encode(message)))


def publish_sync(client: redis.Redis, namespace: str, message: dict[str, Any]) -> int:
    """Publish from threads (Dramatiq actors); returns how many API processes received it."""
    return int(client.publish(channel(namespace), encode(message)))


class Notifier:
    """Publishes from asyncio code of any process and any event loop: a blocking client
    used from a thread, so one instance serves every loop (the media node has two). A
    notification that cannot be sent is logged, never raised: live messages are best-effort
    and must not fail the state change they report."""

    def __init__(self, redis_url: str, namespace: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self._namespace = namespace

    async def send(self, message: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(publish_sync, self._client, self._namespace, message)
        except redis.RedisError as exc:
            logger.warning("could not publish a %s message: %s", message.get("type"), exc)

    def close(self) -> None:
        self._client.close()
