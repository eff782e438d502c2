"""Detection end to end: a real media node samples a real scene camera, a real worker runs
the `detect` jobs, events land in the database with their boxes and thumbnail and are
published for the WebSocket."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
import redis

from core import notify
from core.events import EventFilter, EventRecord, EventService
from core.settings import Settings
from tests.conftest import bearer
from tests.detection.helpers import (
    RIGHT_SIDE,
    SCENE,
    set_detection,
    start_stream,
    wait_counters,
)
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow
INTERVAL_MS = 500
MOTION = {"enabled": True, "sensitivity": 0.5, "minArea": 100}


class Channel:
    """The live-notification channel, read the way an API process's hub reads it."""

    def __init__(self, settings: Settings) -> None:
        self._client = redis.Redis.from_url(settings.redis.url or "")
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(notify.channel(settings.redis.namespace))

    def messages(self) -> list[dict[str, Any]]:
        out = []
        while (message := self._pubsub.get_message(timeout=0.01)) is not None:
            if message["type"] == "message":
                out.append(json.loads(message["data"]))
        return out

    def close(self) -> None:
        self._pubsub.close()
        self._client.close()


async def wait_events(events: EventService, camera: str, count: int,
                      seconds: float = 30) -> list[EventRecord]:
    deadline = time.monotonic() + seconds
    rows: list[EventRecord] = []
    while time.monotonic() < deadline:
        rows, _ = await events.page(EventFilter(camera_id=uuid.UUID(camera)), 1, 100)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"{len(rows)} events, expected {count}")


async def test_motion_makes_one_event_with_its_box_thumbnail_and_live_message(
    client, admin_token, settings, media_node, worker, start_camera
):
    channel = Channel(settings)
    try:
        camera = start_camera(SCENE, scene="motion", pattern="smpte100",
                              object_area=RIGHT_SIDE)
        device = await add_device(client, camera.url)
        # Objects off: the still smpte pattern must not depend on what HOG thinks of it.
        await set_detection(client, admin_token, device, {
            "detectionInterval": INTERVAL_MS, "motionDetection": MOTION,
            "objectTypes": [{"type": kind, "enabled": False}
                            for kind in ("person", "vehicle", "animal")]})
        stream = await start_stream(client, device)
        events = EventService(settings.server.data_dir)

        await wait_counters(stream, lambda c: c["samples"] >= 6)
        assert (await events.page(EventFilter(camera_id=uuid.UUID(device)), 1, 10))[1] == 0

        camera.set_motion(True)
        moving_since = time.time()
        [event] = await wait_events(events, device, 1)
        assert event.type == "motion" and event.source == "detector"
        assert str(event.stream_id) == stream
        assert event.start_at.timestamp() - moving_since <= 2 * INTERVAL_MS / 1000
        assert (event.frame_width, event.frame_height) == (640, 360)
        assert event.objects
        for obj in event.objects:
            box = obj["boundingBox"]
            assert box["x"] + box["width"] / 2 > 320, box  # the block moves on the right
        assert event.thumbnail and events.thumbnail_path(event.id).read_bytes()[:2] == b"\xff\xd8"

        # The motion goes on for several more intervals: still one event, extended.
        sent = await wait_counters(stream, lambda c: c["jobs_sent"] >= 6)
        assert sent["jobs_sent"] >= 6
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            [again] = await wait_events(events, device, 1)
            if again.last_seen_at > event.start_at:
                break
            await asyncio.sleep(0.2)
        rows, total = await events.page(EventFilter(camera_id=uuid.UUID(device)), 1, 10)
        assert total == 1 and rows[0].id == event.id and rows[0].last_seen_at > event.start_at

        live = [m for m in channel.messages() if m["type"] == "event"]
        assert [m["data"]["id"] for m in live] == [str(event.id)]
        data = live[0]["data"]
        assert data["cameraId"] == device and data["type"] == "motion"
        assert data["thumbnailPath"] == f"/media/thumbnails/events/{event.id}"
        # It happened during the stream's continuous recording (whose id is the stream's).
        assert data["recordingId"] == stream
        detail = await client.get(f"/api/v1/events/{event.id}", headers=bearer(admin_token))
        assert detail.status_code == 200, detail.text
        assert detail.json()["recordingId"] == stream
        assert detail.json()["recording"]["type"] == "continuous"
    finally:
        channel.close()
