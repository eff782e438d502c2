"""Every process for real: `vas api`, a media node and a worker, a scene camera. A motion
event reaches the WebSocket subscriber of its camera (not a subscriber of another camera)
and is listed by `GET /events`."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.detection.helpers import RIGHT_SIDE, SCENE
from tests.omnisight.test_ws import Api, settings_env, start_api  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow
SETTINGS = {
    "detectionInterval": 500,
    "motionDetection": {"enabled": True, "sensitivity": 0.5, "minArea": 100},
    "objectTypes": [{"type": kind, "enabled": False} for kind in ("person", "vehicle", "animal")],
}


def subscribe(api: Api, token: str, camera: str) -> ClientConnection:
    ws = connect(f"{api.ws}?token={token}", open_timeout=10)
    ws.send(json.dumps({"type": "subscribe", "channel": "camera_events",
                        "data": {"cameraId": camera}}))
    ws.send(json.dumps({"type": "heartbeat"}))  # answered after the subscribe: it is done
    assert json.loads(ws.recv(timeout=10))["type"] == "heartbeat_ack"
    return ws


def next_event(ws: ClientConnection, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            return None
        if message["type"] == "event":
            return dict(message["data"])
    return None


def test_a_motion_event_reaches_the_websocket_and_the_list(
    start_api, start_process, start_camera  # noqa: F811
):
    api = start_api()
    start_process("media-node", "registered")
    start_process("worker", "serving queues")
    token = api.login()
    headers = {"Authorization": f"Bearer {token}"}
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE)
    with httpx.Client(base_url=api.http, headers=headers, timeout=40) as http:
        device = http.post("/api/v1/devices", json={"name": "yard", "rtsp_url": camera.url})
        assert device.status_code == 201, device.text
        camera_id = device.json()["id"]
        other = http.post("/api/v1/devices", json={"name": "other",
                                                   "rtsp_url": "rtsp://127.0.0.1:9/none"})
        put = http.put(f"/api/v1/cameras/{camera_id}/detection", json=SETTINGS)
        assert put.status_code == 200, put.text
        started = http.post(f"/api/v1/devices/{camera_id}/start-stream")
        assert started.status_code in (200, 201), started.text

        mine, theirs = subscribe(api, token, camera_id), subscribe(api, token, other.json()["id"])
        try:
            assert next_event(mine, 4.0) is None  # still scene: nothing
            camera.set_motion(True)
            event = next_event(mine, 30.0)
            assert event is not None and event["cameraId"] == camera_id
            assert event["type"] == "motion" and event["cameraName"] == "yard"
            assert event["thumbnailPath"] == f"/media/thumbnails/events/{event['id']}"
            assert next_event(theirs, 1.0) is None
        finally:
            mine.close()
            theirs.close()

        listed = http.get("/api/v1/events", params={"cameraId": camera_id}).json()
        assert [e["id"] for e in listed["events"]] == [event["id"]]
        thumb = http.get(f"/api/v1{event['thumbnailPath']}")
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
