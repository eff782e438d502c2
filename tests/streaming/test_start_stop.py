"""Guide §3.2/§3.3: start-stream, reconnect, stop, failures with the guide's codes — with a
real RTSP camera, a real media-node process, real Redis and a real database."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from core.tables import Producer, Stream
from tests.camera import unused_port
from tests.conftest import bearer
from tests.vas_fixtures import add_device, rtsp_connections

pytestmark = pytest.mark.slow
START_KEYS = {"status", "device_id", "room_id", "transport_id", "producers", "stream",
              "v2_stream_id"}

START_DEADLINE_S = 30.0


async def test_start_goes_live_and_a_second_start_reconnects(client, admin_token, media_node,
                                                              start_camera):
    camera = start_camera(width=640, height=360, fps=15, gop=15)
    device_id = await add_device(client, camera.url)

    began = time.monotonic()
    first = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    elapsed = time.monotonic() - began
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == START_KEYS
    assert body["status"] == "success" and body["device_id"] == device_id
    assert body["room_id"] == device_id
    assert body["stream"]["status"] == "started" and body["stream"]["started_at"].endswith("Z")
    assert body["producers"]["video"].startswith("producer-")
    assert elapsed < 10, f"start-stream took {elapsed:.2f} s"

    stream_id = body["v2_stream_id"]
    detail = (await client.get(f"/v2/streams/{stream_id}", headers=bearer(admin_token))).json()
    assert detail["state"] == "LIVE"
    video = detail["codec_config"]["video"]
    assert video["codec"] == "H264" and (video["width"], video["height"]) == (640, 360)
    assert video["profile"][:2] == "42", video  # the camera sends baseline
    assert detail["producer"]["mediasoup_id"] == body["producers"]["video"]
    assert detail["producer"]["state"] == "ACTIVE"

    again = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert again.status_code == 200
    second = again.json()
    assert second["reconnect"] is True
    assert second["stream"]["status"] == "active"
    assert second["stream"]["message"] == "Stream already running"
    for key in ("v2_stream_id", "transport_id", "producers", "room_id"):
        assert second[key] == body[key], key
    status = (await client.get(f"/api/v1/devices/{device_id}/status")).json()
    assert status["streaming"]["active"] is True and status["is_active"] is True
    assert rtsp_connections(camera.port) == 1


async def test_concurrent_starts_make_exactly_one_ingest(client, media_node, start_camera):
    camera = start_camera()
    device_id = await add_device(client, camera.url)
    answers = await asyncio.gather(*(
        client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert len({b["v2_stream_id"] for b in bodies}) == 1
    assert len({b["producers"]["video"] for b in bodies}) == 1
    assert sum(1 for b in bodies if not b.get("reconnect")) == 1
    assert await Stream.count().where(Stream.camera_id == uuid.UUID(device_id)) == 1
    assert await Producer.count().where(Producer.stream_id == uuid.UUID(bodies[0]["v2_stream_id"])) == 1
    await asyncio.sleep(1)
    assert rtsp_connections(camera.port) == 1


async def test_stop_stream_and_delete_close_the_stream(client, admin_token, media_node,
                                                       start_camera):
    camera = start_camera()
    headers = bearer(admin_token)
    for how in ("stop-stream", "delete"):
        device_id = await add_device(client, camera.url)
        started = (await client.post(f"/api/v1/devices/{device_id}/start-stream",
                                     timeout=40)).json()
        stream_id = started["v2_stream_id"]
        if how == "stop-stream":
            stop = await client.post(f"/api/v1/devices/{device_id}/stop-stream", timeout=20)
            assert stop.status_code == 200
            assert stop.json() == {"status": "success", "device_id": device_id, "stopped": True}
        else:
            assert (await client.delete(f"/v2/streams/{stream_id}", headers=headers,
                                        timeout=20)).status_code == 204
        detail = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()
        assert detail["state"] == "CLOSED"
        assert detail["producer"]["state"] == "CLOSED"
        status = (await client.get(f"/api/v1/devices/{device_id}/status")).json()
        assert status["streaming"]["active"] is False
    for _ in range(40):
        if rtsp_connections(camera.port) == 0:
            break
        await asyncio.sleep(0.1)
    assert rtsp_connections(camera.port) == 0, "the ingest kept its RTSP session"
    again = await client.post(f"/api/v1/devices/{device_id}/stop-stream")
    assert again.json()["stopped"] is False


async def test_camera_drop_goes_error_then_live_on_its_own(client, admin_token, media_node,
                                                           start_camera):
    camera = start_camera(gop=15)
    device_id = await add_device(client, camera.url)
    stream_id = (await client.post(f"/api/v1/devices/{device_id}/start-stream",
                                   timeout=40)).json()["v2_stream_id"]
    headers = bearer(admin_token)

    async def wait_state(state: str, seconds: float) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            health = (await client.get(f"/v2/streams/{stream_id}/health", headers=headers)).json()
            if health["state"] == state:
                return health
            await asyncio.sleep(0.2)
        raise AssertionError(f"stream not {state} within {seconds} s: {health}")

    healthy = await wait_state("LIVE", 5)
    camera.stop()
    broken = await wait_state("ERROR", 15)
    assert broken["is_healthy"] is False
    # Guide §5.5: its client tells an offline camera by `health.last_error?.includes('RTSP')`.
    assert "RTSP" in broken["last_error"], broken["last_error"]
    assert broken["last_error"].startswith(("RTSP_CONNECTION_FAILED: ", "RTSP_TIMEOUT: "))
    camera.start()
    recovered = await wait_state("LIVE", 25)
    assert recovered["last_error"] is None
    assert recovered["is_healthy"] is True
    assert healthy["stream_id"] == recovered["stream_id"]


@pytest.mark.parametrize("source, code, status", [
    ("unreachable", "RTSP_CONNECTION_FAILED", 502),
    ("silent", "RTSP_TIMEOUT", 504),
    ("no-video", "SSRC_CAPTURE_FAILED", 502),
])
async def test_failing_sources_get_the_guide_codes(client, admin_token, media_node, start_camera,
                                                   silent_server, source, code, status):
    url = {
        "unreachable": lambda: f"rtsp://127.0.0.1:{unused_port()}/cam",
        "silent": lambda: silent_server.url,
        "no-video": lambda: start_camera(no_video=True).url,
    }[source]()
    device_id = await add_device(client, url)
    began = time.monotonic()
    response = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    elapsed = time.monotonic() - began
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert set(detail) == {"error_code", "message", "detail"}
    assert detail["error_code"] == code
    assert elapsed < START_DEADLINE_S, f"{source}: {elapsed:.2f} s (the guide's deadline)"
    rows = (await client.get("/v2/streams", params={"camera_id": device_id},
                             headers=bearer(admin_token))).json()["streams"]
    assert [r["state"] for r in rows] == ["CLOSED"]
    status_now = (await client.get(f"/api/v1/devices/{device_id}/status")).json()
    assert status_now["streaming"]["active"] is False and status_now["is_active"] is False


async def test_no_media_node_is_503(client, start_camera):
    device_id = await add_device(client, "rtsp://127.0.0.1:9/none")
    response = await client.post(f"/api/v1/devices/{device_id}/start-stream")
    assert response.status_code == 503
    assert response.json()["detail"]["error_code"] == "MEDIASOUP_UNAVAILABLE"


async def test_v2_create_answers_202_and_the_stream_goes_live(client, admin_token, media_node,
                                                               start_camera):
    camera = start_camera()
    device_id = await add_device(client, camera.url)
    headers = bearer(admin_token)
    created = await client.post("/v2/streams", json={"camera_id": device_id}, headers=headers)
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["state"] == "INITIALIZING" and body["camera_id"] == device_id
    for _ in range(100):
        state = (await client.get(f"/v2/streams/{body['id']}", headers=headers)).json()["state"]
        if state == "LIVE":
            break
        await asyncio.sleep(0.1)
    assert state == "LIVE"
    again = await client.post("/v2/streams", json={"camera_id": device_id}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    for bad in ({"camera_id": "x"}, {"camera_id": str(uuid.uuid4())}, {}):
        response = await client.post("/v2/streams", json=bad, headers=headers)
        assert response.status_code in (400, 404), (bad, response.text)


async def test_validate_probes_for_real(client, worker, start_camera):
    camera = start_camera(width=320, height=240, user="u", password="p4ss")
    good = await client.post("/api/v1/devices/validate",
                             json={"name": "t", "rtsp_url": camera.url}, timeout=30)
    assert good.status_code == 200, good.text
    body = good.json()
    assert body["valid"] is True and body["message"] == "Device validated successfully"
    assert isinstance(body["ssrc"], int)
    assert "p4ss" not in good.text and ":******@" in body["rtsp_url"]
    assert (body["video"]["width"], body["video"]["height"]) == (320, 240)

    bad = await client.post("/api/v1/devices/validate",
                            json={"rtsp_url": f"rtsp://127.0.0.1:{unused_port()}/x"}, timeout=30)
    assert bad.status_code == 200
    assert bad.json()["valid"] is False and bad.json()["error"]
    wrong = await client.post("/api/v1/devices/validate", json={"rtsp_url": "http://x/y"})
    assert wrong.status_code == 400


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("transport", ["tcp", "udp"])
async def test_credentials_in_the_url_and_either_transport(client, admin_token, media_node,
                                                           start_camera, transport):
    camera = start_camera(user="viewer", password="s3cr3t!", fps=15, gop=15)
    device_id = await add_device(client, camera.url, rtsp_transport=transport)
    response = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert response.status_code == 200, response.text
    stream_id = response.json()["v2_stream_id"]
    assert "s3cr3t" not in response.text
    # A full metrics window (5 s) of the live stream, as reported by its node.
    for _ in range(200):
        health = (await client.get(f"/v2/streams/{stream_id}/health",
                                   headers=bearer(admin_token))).json()
        if health["uptime_seconds"] >= 6:
            break
        await asyncio.sleep(0.1)
    assert health["state"] == "LIVE" and health["is_healthy"] is True
    metrics = health["metrics"]
    assert 12 <= metrics["fps"] <= 17, metrics
    assert metrics["bitrate_kbps"] > 10, metrics
    assert metrics["packet_loss"] < 0.05, metrics
    assert 0 <= metrics["jitter_ms"] < 200, metrics
    assert health["uptime_seconds"] >= 5
    assert health["checked_at"].endswith("Z")
    if transport == "tcp":
        assert rtsp_connections(camera.port) == 1
    assert "s3cr3t" not in media_node.output
