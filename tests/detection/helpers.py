"""Reading what a media node did: its detection counters (reported with the stream's
metrics every heartbeat) and the jobs it put on the `detect` queue (straight from Redis)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import redis

from core.settings import Settings
from core.tables import HlsSegment, Stream
from jobs.node.protocol import DetectFrame
from tests.camera import CameraProfile
from tests.conftest import bearer

SCENE = CameraProfile(width=640, height=360, fps=15, gop=15, bitrate_kbps=800)
RIGHT_SIDE = (0.55, 0.2, 1.0, 0.8)
LEFT_HALF = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]


async def counters(stream_id: str) -> dict[str, int] | None:
    row = await Stream.select(Stream.metrics).where(Stream.id == uuid.UUID(stream_id)).first()
    metrics = row["metrics"] if row else None
    if isinstance(metrics, str):
        metrics = json.loads(metrics)
    if not isinstance(metrics, dict):
        return None
    detection = metrics.get("detection")
    return detection if isinstance(detection, dict) else None


async def wait_counters(stream_id: str, ok: Callable[[dict[str, int]], bool],
                        seconds: float = 30) -> dict[str, int]:
    """The stream's detection counters once `ok` holds for them."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = await counters(stream_id)
        if last is not None and ok(last):
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"detection counters never matched: {last}")


def detect_jobs(settings: Settings) -> list[DetectFrame]:
    """The jobs waiting on the `detect` queue, oldest first."""
    client = redis.Redis.from_url(settings.redis.url or "")
    try:
        raw = client.hgetall(f"{settings.redis.namespace}:dramatiq:detect.msgs")
    finally:
        client.close()
    jobs = []
    for value in raw.values():
        message = json.loads(value)
        assert message["actor_name"] == "detect_frame" and message["queue_name"] == "detect"
        jobs.append(msgspec.convert(message["args"][0], DetectFrame))
    return sorted(jobs, key=lambda job: job.wallclock)


async def start_stream(client: Any, device_id: str) -> str:
    response = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["v2_stream_id"])


async def set_detection(client: Any, token: str, camera: str, body: dict[str, Any]) -> None:
    response = await client.put(f"/api/v1/cameras/{camera}/detection", headers=bearer(token),
                                json=body)
    assert response.status_code == 200, response.text


async def wait_segment(stream_id: str, seconds: float = 30) -> None:
    """Until the stream's first HLS segment is indexed: the ingest has run for a while."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await HlsSegment.exists().where(HlsSegment.stream_id == uuid.UUID(stream_id)):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"no segment after {seconds} s")
