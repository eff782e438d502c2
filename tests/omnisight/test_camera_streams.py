"""OmniSight cameras streaming for real: a real RTSP camera, a real media-node process, real
Redis and database. Starting here and stopping through V1 is one ingest; the camera's status
follows its stream (online, error, offline); deleting a streaming camera stops it first."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from core.stream_states import StreamState
from core.streams import StreamService
from core.tables import HlsSegment, Stream
from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of
from tests.streaming.conftest import FAST
from tests.vas_fixtures import rtsp_connections

pytestmark = pytest.mark.slow
START_KEYS = {"id", "streamId", "status", "startedAt", "message"}
STOP_KEYS = {"id", "streamId", "status", "endedAt", "message"}
STATUS_KEYS = {"id", "status", "lastSeen", "streamActive", "recordingActive", "detectionActive"}


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    """Short heartbeats and camera timeouts, so that a lost camera shows as error quickly."""
    return {**settings_env, **FAST}


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    """Wait until `check()` answers something true; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def stream_metrics(stream_id: str) -> dict[str, Any]:
    row = await Stream.select(Stream.metrics).where(Stream.id == uuid.UUID(stream_id)).first()
    metrics = row["metrics"] if row else None
    metrics = json.loads(metrics) if isinstance(metrics, str) else metrics
    return metrics if isinstance(metrics, dict) else {}


async def detection_metrics(stream_id: str) -> dict[str, Any]:
    """The detection counters the owning node reported with the stream's metrics."""
    detection = (await stream_metrics(stream_id)).get("detection")
    assert isinstance(detection, dict), detection
    return detection


async def wait_connections(port: int, count: int) -> None:
    async def check() -> bool:
        return rtsp_connections(port) == count

    await until(check, f"{count} RTSP connections to the camera")


async def test_start_here_stop_there_one_ingest_and_status_from_reality(
    client: httpx.AsyncClient, admin_user: dict[str, Any], media_node: Any, start_camera: Any,
) -> None:
    headers = bearer(admin_user["token"])
    camera = start_camera(width=640, height=360, fps=15, gop=15)
    made = await client.post(f"{BASE}/cameras", headers=headers, json={
        "name": "Porch", "rtspUrl": camera.url, "location": "Porch", "model": "Test camera",
        "settings": {"resolution": "360p", "framerate": 15}})
    assert made.status_code == 201, made.text
    camera_id = made.json()["id"]
    before = (await client.get(f"{BASE}/cameras/{camera_id}/status", headers=headers)).json()
    assert before == {"id": camera_id, "status": "offline", "lastSeen": None,
                      "streamActive": False, "recordingActive": False, "detectionActive": False}

    started = await client.post(f"{BASE}/cameras/{camera_id}/stream/start", headers=headers,
                                timeout=40)
    assert started.status_code == 200, started.text
    body = started.json()
    assert set(body) == START_KEYS
    assert (body["id"], body["status"], body["message"]) == (camera_id, "active",
                                                             "Stream started successfully")
    assert body["startedAt"].endswith("Z")
    stream_id = body["streamId"]
    assert (await Stream.select(Stream.state).where(Stream.id == uuid.UUID(stream_id)).first()
            ) == {"state": "LIVE"}
    assert rtsp_connections(camera.port) == 1

    # The same one ingest from the V1 side: a second start is a reconnect, not an ingest.
    v1 = await client.post(f"/api/v1/devices/{camera_id}/start-stream", timeout=40)
    assert v1.status_code == 200 and v1.json()["reconnect"] is True
    assert v1.json()["v2_stream_id"] == stream_id
    again = await client.post(f"{BASE}/cameras/{camera_id}/stream/start", headers=headers,
                              timeout=40)
    assert again.status_code == 200 and again.json()["streamId"] == stream_id
    assert rtsp_connections(camera.port) == 1

    assert (await client.get(f"{BASE}/cameras/{camera_id}", headers=headers)).json()[
        "status"] == "online"
    online = (await client.get(f"{BASE}/cameras", params={"status": "online"},
                               headers=headers)).json()
    assert [c["id"] for c in online["cameras"]] == [camera_id]

    async def live_status() -> dict[str, Any] | None:
        status = (await client.get(f"{BASE}/cameras/{camera_id}/status", headers=headers)).json()
        ready = status["lastSeen"] and status["recordingActive"]
        return dict(status) if ready else None

    async def recorded() -> int:
        return int(await HlsSegment.count().where(HlsSegment.stream_id == uuid.UUID(stream_id)))

    await until(recorded, "a recorded segment")
    status = await until(live_status, "lastSeen reported by the node")
    assert set(status) == STATUS_KEYS
    assert status["lastSeen"].endswith("Z")

    # Detection is on by default (system settings): active once the node reports samples.
    async def sampling() -> dict[str, Any] | None:
        status = (await client.get(f"{BASE}/cameras/{camera_id}/status", headers=headers)).json()
        return dict(status) if status["detectionActive"] else None

    status = await until(sampling, "detectionActive")
    assert (status["status"], status["streamActive"]) == ("online", True)
    reported = await detection_metrics(stream_id)
    assert reported["samples"] > 0 and time.time() - reported["last_sample_at"] < 30

    # Turned off for this camera: not active while the stream stays LIVE, and the node
    # really stops sampling (judged on reports made after the change came into force).
    turned_off_at = time.time()
    off = await client.put(f"{BASE}/cameras/{camera_id}/detection", headers=headers,
                           json={"enabled": False})
    assert off.status_code == 200, off.text
    status = (await client.get(f"{BASE}/cameras/{camera_id}/status", headers=headers)).json()
    assert (status["streamActive"], status["detectionActive"]) == (True, False)

    async def report_after(reads: int = 0) -> dict[str, Any] | None:
        report = await detection_metrics(stream_id)
        fresh = report["settings_applied_at"] >= turned_off_at
        return report if fresh and report["settings_reads"] >= reads else None

    first = await until(report_after, "a report after the change")
    later = await until(lambda: report_after(first["settings_reads"] + 3), "later reports")
    assert later["samples"] == first["samples"], (first, later)
    on = await client.put(f"{BASE}/cameras/{camera_id}/detection", headers=headers, json={})
    assert on.status_code == 200, on.text
    await until(sampling, "detectionActive again")

    # Stopped through V1: the camera is offline here, and its ingest is gone.
    stopped = await client.post(f"/api/v1/devices/{camera_id}/stop-stream", timeout=20)
    assert stopped.status_code == 200 and stopped.json()["stopped"] is True
    await wait_connections(camera.port, 0)
    after = (await client.get(f"{BASE}/cameras/{camera_id}/status", headers=headers)).json()
    assert (after["status"], after["streamActive"], after["recordingActive"]) == (
        "offline", False, False)
    assert after["lastSeen"] is not None  # the last packet of the last stream
    conflict = await client.post(f"{BASE}/cameras/{camera_id}/stream/stop", headers=headers)
    assert conflict.status_code == 409 and error_of(conflict)["code"] == "CONFLICT"


async def test_a_lost_camera_is_error_and_deleting_a_streaming_camera_stops_it(
    client: httpx.AsyncClient, admin_user: dict[str, Any], media_node: Any, start_camera: Any,
) -> None:
    headers = bearer(admin_user["token"])
    camera = start_camera(width=320, height=240, fps=15, gop=15)
    other = await client.post(f"{BASE}/cameras", headers=headers, json={
        "name": "Other", "rtspUrl": "rtsp://127.0.0.1:9/none"})
    made = await client.post(f"{BASE}/cameras", headers=headers, json={
        "name": "Yard", "rtspUrl": camera.url})
    camera_id = made.json()["id"]
    started = await client.post(f"{BASE}/cameras/{camera_id}/stream/start", headers=headers,
                                timeout=40)
    assert started.status_code == 200, started.text
    stream_id = uuid.UUID(started.json()["streamId"])

    async def segments() -> int:
        return int(await HlsSegment.count().where(HlsSegment.stream_id == stream_id))

    await until(segments, "a recorded segment")
    camera.stop()  # the RTSP server goes away: the stream goes to ERROR

    async def in_error() -> bool:
        listed = (await client.get(f"{BASE}/cameras", params={"status": "error"},
                                   headers=headers)).json()
        return [c["id"] for c in listed["cameras"]] == [camera_id]

    await until(in_error, "the camera in error")
    status = (await client.get(f"{BASE}/cameras/{camera_id}/status", headers=headers)).json()
    assert (status["status"], status["streamActive"], status["recordingActive"]) == (
        "error", False, False)
    offline = (await client.get(f"{BASE}/cameras", params={"status": "offline"},
                                headers=headers)).json()
    assert [c["id"] for c in offline["cameras"]] == [other.json()["id"]]

    kept = await segments()
    deleted = await client.delete(f"{BASE}/cameras/{camera_id}", headers=headers, timeout=20)
    assert deleted.status_code == 200, deleted.text
    row = await Stream.select(Stream.state).where(Stream.id == stream_id).first()
    assert row == {"state": "CLOSED"}
    assert await segments() >= kept > 0  # the recordings outlive the camera (the last
    # one may be closed by the stop)
    remaining = (await client.get(f"{BASE}/cameras", headers=headers)).json()
    assert [c["id"] for c in remaining["cameras"]] == [other.json()["id"]]


async def test_transcode_settings_apply_from_the_streams_next_start(
    client: httpx.AsyncClient, admin_user: dict[str, Any], media_node: Any, start_camera: Any,
) -> None:
    """The camera body's `transcode*` settings are the device's: the stream started after
    them serves what they say; a change applies at the next start, not to the running one."""
    headers = bearer(admin_user["token"])
    camera = start_camera(width=640, height=360, fps=15, gop=15)
    made = await client.post(f"{BASE}/cameras", headers=headers, json={
        "name": "Scaled", "rtspUrl": camera.url,
        "settings": {"transcode": "always", "transcodeWidth": 320, "transcodeKbps": 300}})
    assert made.status_code == 201, made.text
    camera_id = made.json()["id"]

    async def webrtc() -> dict[str, Any]:
        started = await client.post(f"{BASE}/cameras/{camera_id}/stream/start",
                                    headers=headers, timeout=40)
        assert started.status_code == 200, started.text
        stream = await client.get(f"/v2/streams/{started.json()['streamId']}", headers=headers)
        config = stream.json()["codec_config"]
        return {"transcode": config["transcode"], **config["webrtc"]}

    first = await webrtc()
    assert (first["transcode"], first["transcoded"], first["width"], first["height"],
            first["kbps"]) == ("always", True, 320, 180, 300)
    changed = await client.put(f"{BASE}/cameras/{camera_id}", headers=headers,
                               json={"settings": {"transcode": "never"}})
    assert changed.status_code == 200, changed.text
    assert (await webrtc())["transcode"] == "always"  # the running stream keeps its plan
    stopped = await client.post(f"{BASE}/cameras/{camera_id}/stream/stop", headers=headers,
                                timeout=20)
    assert stopped.status_code == 200, stopped.text
    again = await webrtc()
    assert (again["transcode"], again["transcoded"], again["width"]) == ("never", False, 640)


async def test_detection_is_active_only_while_the_node_reports_samples(
    client: httpx.AsyncClient, admin_user: dict[str, Any], settings: Any,
) -> None:
    # The rows a media node writes, without one: a LIVE stream and the metrics it reports.
    headers = bearer(admin_user["token"])
    made = await client.post(f"{BASE}/cameras", headers=headers, json={
        "name": "Yard", "rtspUrl": "rtsp://127.0.0.1:9/yard"})
    camera_id = made.json()["id"]
    streams = StreamService()
    stream, _ = await streams.create(uuid.UUID(camera_id))
    await streams.transition(stream.id, StreamState.LIVE)

    async def active(detection: dict[str, Any] | None) -> bool:
        await Stream.update({Stream.metrics: {"detection": detection}}).where(
            Stream.id == stream.id)
        status = (await client.get(f"{BASE}/cameras/{camera_id}/status", headers=headers)).json()
        assert status["streamActive"] is True
        return bool(status["detectionActive"])

    # Settings on (the defaults, 1 s), but the node reports no sample, or only old ones.
    window = 2 * (1.0 + settings.media.heartbeat_s)
    assert not await active(None)
    assert not await active({"samples": 0, "last_sample_at": 0.0})
    assert not await active({"samples": 9, "last_sample_at": time.time() - window - 5})
    assert await active({"samples": 10, "last_sample_at": time.time()})
    # Sampled a moment ago but turned off since: not active.
    off = await client.put(f"{BASE}/cameras/{camera_id}/detection", headers=headers,
                           json={"enabled": False})
    assert off.status_code == 200, off.text
    assert not await active({"samples": 10, "last_sample_at": time.time()})
