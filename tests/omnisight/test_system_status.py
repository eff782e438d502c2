"""`GET /system/status` from reality: the disk (shutil.disk_usage), the tables, and the
heartbeats of real worker and media-node processes; a node that stops answering is listed
unhealthy and announced by housekeeping as a `system_notification`."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import redis

from core import notify
from core.clock import iso_ms, utcnow
from core.events import EventService
from core.recordings import RecordingIndex
from core.settings import Settings
from core.stream_states import StreamState
from core.streams import StreamService
from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of, new_user

KEYS = {"status", "version", "uptime", "services", "storage", "cameras", "recordings", "events"}
SLACK = 256 * 1024 * 1024  # other work on the machine may write meanwhile


async def status_of(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get(f"{BASE}/system/status", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_numbers_come_from_the_disk_and_the_tables(client, admin_user, settings: Settings):
    headers = bearer(admin_user["token"])
    streams = StreamService()
    ids = []
    for name in ("a", "b", "c", "d"):
        made = await client.post(f"{BASE}/cameras", headers=headers, json={
            "name": name, "rtspUrl": f"rtsp://127.0.0.1:9/{name}"})
        ids.append(uuid.UUID(made.json()["id"]))
    # Camera a LIVE, camera b in ERROR (the rows a media node would write), c and d offline.
    live, _ = await streams.create(ids[0])
    await streams.transition(live.id, StreamState.LIVE)
    failed, _ = await streams.create(ids[1])
    await streams.transition(failed.id, StreamState.ERROR)
    index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
    oldest = utcnow() - timedelta(days=2)
    for number, (stream, size) in enumerate(((live.id, 1000), (live.id, 2000), (failed.id, 500))):
        start = oldest + timedelta(hours=number)
        await index.add(stream, number, f"seg_{number}.ts", start, start + timedelta(seconds=6),
                        6.0, size, False)

    index.root.mkdir(parents=True, exist_ok=True)
    before = shutil.disk_usage(index.root)
    body = await status_of(client, admin_user["token"])
    after = shutil.disk_usage(index.root)
    assert set(body) == KEYS
    assert body["storage"]["total"] == before.total
    assert min(before.used, after.used) - SLACK <= body["storage"]["used"] <= max(
        before.used, after.used) + SLACK
    assert min(before.free, after.free) - SLACK <= body["storage"]["free"] <= max(
        before.free, after.free) + SLACK
    assert body["storage"]["recordings"] == {"total": 3500, "oldest": iso_ms(oldest)}
    assert body["cameras"] == {"total": 4, "online": 1, "offline": 2, "error": 1}
    assert body["recordings"] == {"active": 1, "total": 2}
    assert body["events"] == {"last24Hours": 0, "byType": {}}
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["uptime"], int) and body["uptime"] >= 0
    # In process: the API alone, no worker or media node: not healthy as a system.
    assert body["services"] == [{"name": "api-gateway", "status": "healthy",
                                 "uptime": body["uptime"]}]
    assert body["status"] == "degraded"


async def test_event_counts_are_the_events_that_began_in_the_last_24_hours(
    client, admin_user, settings: Settings
):
    headers = bearer(admin_user["token"])
    made = await client.post(f"{BASE}/cameras", headers=headers, json={
        "name": "Gate", "rtspUrl": "rtsp://127.0.0.1:9/gate"})
    camera = uuid.UUID(made.json()["id"])
    events = EventService(settings.server.data_dir)
    now = utcnow()

    async def detected(kind: str, at: datetime) -> None:
        await events.record_detection(camera, None, kind, at, 0.8, [], (640, 360), None, 10)

    for hours in (1, 5, 23):
        await detected("motion", now - timedelta(hours=hours))
    await detected("person", now - timedelta(hours=2))
    await detected("person", now - timedelta(hours=2) + timedelta(seconds=5))  # merged: one
    await detected("person", now - timedelta(hours=3))
    await detected("vehicle", now - timedelta(minutes=1))
    # Began before the last 24 hours: not counted, even one whose detections go on since.
    await detected("motion", now - timedelta(hours=25))
    await detected("animal", now - timedelta(hours=24, seconds=5))
    await detected("animal", now - timedelta(hours=24, seconds=5) + timedelta(seconds=8))
    posted = await client.post(f"{BASE}/events", headers=headers,
                               json={"cameraId": str(camera), "type": "custom"})
    assert posted.status_code == 201, posted.text

    body = await status_of(client, admin_user["token"])
    assert body["events"] == {"last24Hours": 7, "byType": {
        "motion": 3, "person": 2, "vehicle": 1, "custom": 1}}  # types with none are left out


async def test_users_may_read_it_and_anonymous_callers_may_not(client):
    user = await new_user(client)
    assert (await client.get(f"{BASE}/system/status", headers=bearer(user["token"]))
            ).status_code == 200
    anonymous = await client.get(f"{BASE}/system/status")
    assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "UNAUTHORIZED"


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    """Short node heartbeats and housekeeping turns, so that a lost node shows quickly."""
    return {**settings_env, "VAS_NODE_HEARTBEAT_MS": "500", "VAS_NODE_LEASE_MS": "3000",
            "VAS_JOB_STALE_MS": "2000"}


async def until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_workers_and_nodes_from_their_heartbeats_and_a_lost_node_is_announced(
    client, admin_user, start_process, settings_env,
):
    token = admin_user["token"]
    listener = redis.Redis.from_url(settings_env["REDIS_URL"])
    channel = listener.pubsub()
    channel.subscribe(notify.channel(settings_env["VAS_REDIS_NAMESPACE"]))
    try:
        node = start_process("media-node", "registered")
        start_process("worker", "serving queues")

        async def both_healthy() -> dict[str, Any] | None:
            body = await status_of(client, token)
            kinds = {s["name"].split(":")[0]: s["status"] for s in body["services"]}
            return body if kinds == {"api-gateway": "healthy", "worker": "healthy",
                                     "media-node": "healthy"} else None

        body = await until(both_healthy, "a healthy worker and media node")
        assert body["status"] == "healthy"
        assert all(set(s) == {"name", "status", "uptime"} and s["uptime"] >= 0
                   for s in body["services"])

        node.proc.kill()  # it stops answering: no clean deregistration
        node.proc.wait(timeout=10)

        async def node_unhealthy() -> dict[str, Any] | None:
            body = await status_of(client, token)
            nodes = [s for s in body["services"] if s["name"].startswith("media-node:")]
            return body if nodes and nodes[0]["status"] == "unhealthy" else None

        body = await until(node_unhealthy, "the killed node listed unhealthy")
        assert body["status"] == "degraded"
        lost = next(s for s in body["services"] if s["name"].startswith("media-node:"))
        assert lost["uptime"] == 0
        node_id = lost["name"].split(":", 1)[1]

        async def announced() -> dict[str, Any] | None:
            message = await asyncio.to_thread(channel.get_message, True, 1.0)
            if message is None or message["type"] != "message":
                return None
            decoded = json.loads(message["data"])
            return decoded if decoded["type"] == "system_notification" else None

        notification = await until(announced, "the lost node's system_notification")
        assert notification["data"]["level"] == "warning"
        assert node_id in notification["data"]["message"]
        assert set(notification["data"]) == {"id", "level", "message", "timestamp"}
    finally:
        channel.close()
        listener.close()
