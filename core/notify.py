"""Real-time notifications for WebSocket clients (OmniSight `/api/v1/ws`), through Redis.

The one way any process (API, worker, media node) tells connected clients that something
happened: build a message with one of the functions below and `publish` it (asyncio) or
`publish_sync` it (threads, Dramatiq actors). Every API process subscribes to the channel and
delivers each message to its own connections (rules in docs/omnisight.md).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from core.clock import iso_ms, utcnow
from core.errors import InvalidInput

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
