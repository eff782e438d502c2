"""OmniSight recordings as sessions over the HLS recorder: start/stop/list/get/delete,
settings checked, continuous recording shown as sessions, recording_status published."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from core import notify
from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of
from tests.streaming.conftest import FAST
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, **FAST}


async def _listen(settings: Any) -> tuple[Redis, Any]:
    redis = Redis.from_url(settings.redis.url)
    pubsub = redis.pubsub()
    await pubsub.subscribe(notify.channel(settings.redis.namespace))
    return redis, pubsub


async def _next_status(pubsub: Any, recording_id: str, status: str, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is None:
            continue
        body = json.loads(message["data"])
        if (body["type"] == "recording_status" and body["data"]["id"] == recording_id
                and body["data"]["status"] == status):
            return dict(body["data"])
    raise AssertionError(f"no recording_status {status} for {recording_id}")


async def _get(client: httpx.AsyncClient, headers: dict[str, str], path: str,
               **params: Any) -> Any:
    response = await client.get(f"{BASE}{path}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_sessions_start_stop_list_get_delete(client, admin_token, settings, media_node,
                                                   start_camera):
    headers = bearer(admin_token)
    camera = start_camera(fps=15, gop=15)
    camera_id = await add_device(client, camera.url)
    start = f"{BASE}/cameras/{camera_id}/recordings/start"

    # Values out of range are refused before anything starts.
    for bad, field in (({"segmentDuration": 5}, "settings.segmentDuration"),
                       ({"segmentDuration": 3601}, "settings.segmentDuration"),
                       ({"format": "avi"}, "settings.format"),
                       ({"fps": 3}, "settings.fps")):
        refused = await client.post(start, headers=headers, json={"settings": bad})
        assert refused.status_code == 400, refused.text
        error = error_of(refused)
        assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == field
    missing = await client.post(f"{BASE}/cameras/{uuid.uuid4()}/recordings/start",
                                headers=headers, json={})
    assert missing.status_code == 404 and error_of(missing)["code"] == "RESOURCE_NOT_FOUND"

    redis, pubsub = await _listen(settings)
    try:
        # The camera is not streaming: starting a recording starts its stream.
        started = await client.post(start, headers=headers, timeout=40, json={
            "settings": {"segmentDuration": 10, "format": "mp4", "resolution": "640x360"}})
        assert started.status_code == 201, started.text
        body = started.json()
        assert body["status"] == "recording" and body["cameraId"] == camera_id
        assert body["settings"] == {"segmentDuration": 10, "format": "mp4",
                                    "resolution": "640x360"}
        recording_id = body["id"]
        announced = await _next_status(pubsub, recording_id, "recording")
        assert announced["cameraId"] == camera_id and announced["endTime"] is None

        wrong = await client.post(start, headers=headers, json={
            "settings": {"resolution": "1920x1080"}})
        assert wrong.status_code == 400
        assert error_of(wrong)["details"]["resolution"] == "640x360"

        # The stream's own HLS recording is a continuous session, recording while LIVE.
        listed = await _get(client, headers, "/recordings", cameraId=camera_id)
        assert listed["total"] == 2 and listed["page"] == 1 and listed["pages"] == 1
        kinds = {r["type"]: r for r in listed["recordings"]}
        assert set(kinds) == {"manual", "continuous"}
        continuous = kinds["continuous"]
        assert continuous["status"] == "recording" and continuous["cameraName"].startswith("cam-")
        assert continuous["settings"]["format"] == "ts"

        detail = await _get(client, headers, f"/recordings/{recording_id}")
        assert detail["camera"]["id"] == camera_id and detail["events"] == []
        assert detail["status"] == "recording" and detail["endTime"] is None
        assert await _get(client, headers, f"/recordings/{recording_id}/events",
                          type="person") == {"events": [], "total": 0, "page": 1,
                                             "limit": 10, "pages": 0}
        bad_type = await client.get(f"{BASE}/recordings/{recording_id}/events", headers=headers,
                                    params={"type": "ufo"})
        assert bad_type.status_code == 400

        # Filters and pagination.
        paged = await _get(client, headers, "/recordings", cameraId=camera_id, limit=1, page=2)
        assert paged["total"] == 2 and paged["pages"] == 2 and len(paged["recordings"]) == 1
        only = await _get(client, headers, "/recordings", cameraId=camera_id, status="completed")
        assert only["total"] == 0
        before = await _get(client, headers, "/recordings", cameraId=camera_id,
                            endTime="2001-01-01T00:00:00Z")
        assert before["total"] == 0
        bad_status = await client.get(f"{BASE}/recordings", headers=headers,
                                      params={"status": "paused"})
        assert bad_status.status_code == 400
        assert error_of(bad_status)["code"] == "VALIDATION_ERROR"

        busy = await client.delete(f"{BASE}/recordings/{recording_id}", headers=headers)
        assert busy.status_code == 409 and error_of(busy)["code"] == "CONFLICT"
        stopped = await client.post(f"{BASE}/recordings/{recording_id}/stop", headers=headers)
        assert stopped.status_code == 200, stopped.text
        done = stopped.json()
        assert done["status"] == "completed" and done["endTime"] and done["duration"] > 0
        ended = await _next_status(pubsub, recording_id, "completed")
        assert ended["endTime"] == done["endTime"]
        again = await client.post(f"{BASE}/recordings/{recording_id}/stop", headers=headers)
        assert again.status_code == 409

        # Stopping the stream completes its continuous session.
        stream = await client.post(f"/api/v1/devices/{camera_id}/stop-stream", headers=headers)
        assert stream.status_code == 200, stream.text
        gone = await _get(client, headers, f"/recordings/{continuous['id']}")
        assert gone["status"] == "completed" and gone["endTime"] is not None
        await _next_status(pubsub, continuous["id"], "completed")
        completed = await _get(client, headers, "/recordings", cameraId=camera_id,
                               status="completed")
        assert completed["total"] == 2
    finally:
        await pubsub.aclose()
        await redis.aclose()

    deleted = await client.delete(f"{BASE}/recordings/{recording_id}", headers=headers)
    assert deleted.status_code == 200 and deleted.json() == {
        "message": "Recording deleted successfully"}
    for path in (f"/recordings/{recording_id}", f"/recordings/{recording_id}/segments"):
        response = await client.get(f"{BASE}{path}", headers=headers)
        assert response.status_code == 404 and error_of(response)["code"] == "RESOURCE_NOT_FOUND"
    removed = await client.delete(f"{BASE}/recordings/{continuous['id']}", headers=headers)
    assert removed.status_code == 200
    left = await _get(client, headers, "/recordings", cameraId=camera_id)
    assert left["total"] == 0


async def test_bad_ids_and_scopes(client, admin_token):
    headers = bearer(admin_token)
    for path in ("/recordings/not-a-uuid", "/recordings/1%20OR%201=1",
                 f"/recordings/{uuid.uuid4()}", f"/recordings/{uuid.uuid4()}/segments"):
        response = await client.get(f"{BASE}{path}", headers=headers)
        assert response.status_code == 404, (path, response.text)
        assert error_of(response)["code"] == "RESOURCE_NOT_FOUND"
    assert (await client.get(f"{BASE}/recordings")).status_code == 401
