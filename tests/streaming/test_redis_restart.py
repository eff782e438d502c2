"""Fault drill, short version: Redis restarts under a LIVE stream (a redis-server the test
starts itself). While it is gone the API answers 503 in the guide's shape for what needs
the queue, the stream keeps streaming and recording; a bookmark asked for just before the
outage completes after it, and everything works again once Redis is back.

The test's Redis keeps no data (no RDB, no AOF), the worst case: a restart loses every
queued message. The bookmark then comes back through the worker's housekeeping, which
re-enqueues a job that showed no life for VAS_JOB_STALE_MS (2 min by default, 4 s here so
the drill stays short)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.tables import HlsSegment
from tests.conftest import bearer
from tests.redis_server import RedisServer
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_env(settings_env: dict[str, str], redis_server: RedisServer) -> dict[str, str]:
    return {**settings_env, "REDIS_URL": redis_server.url, "VAS_JOB_STALE_MS": "4000"}


async def _segments(stream_id: str) -> int:
    return int(await HlsSegment.count().where(HlsSegment.stream_id == uuid.UUID(stream_id)))


async def _wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the Redis is the test's own
async def test_redis_restart_under_a_live_stream(
    client: httpx.AsyncClient, admin_token: str, media_node: Any, worker: Any,
    start_camera: Any, redis_server: RedisServer,
) -> None:
    headers = bearer(admin_token)
    camera = start_camera(fps=15, gop=15)
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    stream = f"/v2/streams/{stream_id}"

    async def recorded() -> bool:
        return await _segments(stream_id) >= 1

    await _wait(recorded, 30, "first segment")
    bookmark = await client.post(f"{stream}/bookmarks", headers=headers, json={
        "source": "live", "before_seconds": 2, "after_seconds": 8})
    assert bookmark.status_code == 201, bookmark.text
    bookmark_path = f"/v2/bookmarks/{bookmark.json()['id']}"

    redis_server.stop()
    down_at = time.monotonic()
    segments_before = await _segments(stream_id)
    snapshot = await client.post(f"{stream}/snapshots", headers=headers, json={"source": "live"})
    assert snapshot.status_code == 503, snapshot.text
    assert snapshot.json()["detail"]["error_code"] == "MEDIASOUP_UNAVAILABLE"
    consume = await client.post(f"{stream}/consume", headers=headers, json={
        "client_id": "drill", "rtp_capabilities": {"codecs": []}})
    assert consume.status_code in (400, 503), consume.text  # never a 500
    assert (await client.get(stream, headers=headers)).json()["state"] == "LIVE"

    async def still_recording() -> bool:
        return await _segments(stream_id) >= segments_before + 2

    await _wait(still_recording, 30, "recording while Redis is down")
    assert (await client.get(stream, headers=headers)).json()["state"] == "LIVE"
    outage = time.monotonic() - down_at

    redis_server.start()

    async def bookmark_ready() -> bool:
        body = (await client.get(bookmark_path, headers=headers)).json()
        assert body["status"] != "failed", body
        return bool(body["status"] == "ready")

    await _wait(bookmark_ready, 90, "the bookmark asked for before the outage")

    async def snapshot_works() -> bool:
        created = await client.post(f"{stream}/snapshots", headers=headers,
                                    json={"source": "live"})
        if created.status_code == 503:
            return False
        assert created.status_code == 201, created.text
        path = f"/v2/snapshots/{created.json()['id']}"
        for _ in range(100):
            body = (await client.get(path, headers=headers)).json()
            if body["status"] == "ready":
                return True
            assert body["status"] == "processing", body
            await asyncio.sleep(0.2)
        return False

    await _wait(snapshot_works, 60, "a live snapshot after Redis returned")
    print(f"Redis down {outage:.1f} s; segments kept coming; bookmark and snapshot completed")
    assert media_node.proc.poll() is None and worker.proc.poll() is None
