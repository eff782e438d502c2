"""Cameras that answer slowly or never, on the product's default settings (open timeout 10 s,
read timeout 5 s, start deadline 30 s), on both backends: the guide's codes, never a 500.

redis-py gives up on a blocking read after 5 s by default; these tests wait longer than that
on purpose, so any wait on a job result that does not honour its own deadline shows here.
"""

from __future__ import annotations

import time

from core.settings import load_settings
from tests.conftest import bearer
from tests.vas_fixtures import add_device

OPEN_TIMEOUT_S = 10.0
START_DEADLINE_S = 30.0


def test_the_defaults_are_the_documented_ones(settings_env):
    media = load_settings(settings_env).media
    assert media.rtsp_open_timeout_s == OPEN_TIMEOUT_S
    assert media.rtsp_read_timeout_s == 5.0


async def test_validate_a_silent_camera_is_rtsp_timeout(client, worker, silent_server):
    began = time.monotonic()
    response = await client.post("/api/v1/devices/validate",
                                 json={"name": "x", "rtsp_url": silent_server.url}, timeout=60)
    elapsed = time.monotonic() - began
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"valid", "error", "error_code", "rtsp_url"}
    assert body["valid"] is False
    assert body["error_code"] == "RTSP_TIMEOUT"
    assert body["rtsp_url"] == silent_server.url
    # The open timeout, not a shorter socket timeout, decided.
    assert OPEN_TIMEOUT_S - 1 <= elapsed < START_DEADLINE_S, elapsed


async def test_start_a_silent_camera_is_504_after_the_open_timeout(client, admin_token,
                                                                  media_node, silent_server):
    device_id = await add_device(client, silent_server.url)
    began = time.monotonic()
    response = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    elapsed = time.monotonic() - began
    assert response.status_code == 504, response.text
    detail = response.json()["detail"]
    assert set(detail) == {"error_code", "message", "detail"}
    assert detail["error_code"] == "RTSP_TIMEOUT"
    assert isinstance(detail["message"], str) and detail["message"]
    assert OPEN_TIMEOUT_S - 1 <= elapsed < START_DEADLINE_S, elapsed
    rows = (await client.get("/v2/streams", params={"camera_id": device_id},
                             headers=bearer(admin_token))).json()["streams"]
    assert [row["state"] for row in rows] == ["CLOSED"]


async def test_a_camera_that_answers_after_7_s_goes_live(client, admin_token, media_node,
                                                         late_camera):
    device_id = await add_device(client, late_camera.url)
    response = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert response.status_code == 200, response.text
    stream_id = response.json()["v2_stream_id"]
    stream = (await client.get(f"/v2/streams/{stream_id}", headers=bearer(admin_token))).json()
    assert stream["state"] == "LIVE"


async def test_validate_a_camera_that_answers_after_7_s(client, worker, late_camera):
    response = await client.post("/api/v1/devices/validate",
                                 json={"name": "x", "rtsp_url": late_camera.url}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is True


async def test_validate_with_no_worker_is_503_at_its_deadline(client, silent_server):
    """Nobody serves the job queue: the API waits its own deadline (25 s), then answers the
    guide's 503 — never a 500 from a Redis read that gave up first."""
    began = time.monotonic()
    response = await client.post("/api/v1/devices/validate",
                                 json={"name": "x", "rtsp_url": silent_server.url}, timeout=60)
    elapsed = time.monotonic() - began
    assert response.status_code == 503, response.text
    assert response.json()["detail"]["error_code"] == "MEDIASOUP_UNAVAILABLE"
    assert 24 <= elapsed < START_DEADLINE_S, elapsed
