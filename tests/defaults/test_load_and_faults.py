"""Load and faults on the default settings (heartbeat 2 s, lease 10 s, consume/connect/stop
10 s, start 30 s): twenty viewers at once, more cameras than a node takes, a hung node.
Each asserts the guide's codes before the guide's deadlines, and never a 500."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from tests.conftest import bearer
from tests.vas_fixtures import add_device, rtsp_connections, until
from vas_client import StreamConsumer, VasClient

START_DEADLINE_S = 30.0
VIEWER_DEADLINE_S = 10.0




def _vas(client, token: str) -> VasClient:
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client  # the in-process app, on the media node's database and Redis
    vas._access, vas._expires_at = token, time.monotonic() + 600
    return vas


async def test_twenty_viewers_join_at_once(client, admin_token, media_node, start_camera):
    camera = start_camera(width=320, height=240, fps=15, gop=30)
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    vas = _vas(client, admin_token)

    async def watch(mode: str) -> tuple[str, int]:
        async with StreamConsumer(vas, stream_id, mode=mode, local_ip="127.0.0.1") as viewer:
            frames = [f async for f in viewer.frames(limit=5)]
            assert all(f.image.shape == (240, 320, 3) for f in frames)
            return viewer.consumer_id, len(frames)

    results = await asyncio.gather(*(watch("guide" if i % 2 else "whep") for i in range(20)))
    assert [count for _, count in results] == [5] * 20
    assert len({consumer_id for consumer_id, _ in results}) == 20
    listed = (await client.get(f"/v2/streams/{stream_id}/consumers",
                               headers=bearer(admin_token))).json()
    assert listed["total_consumers"] == 20
    assert {c["id"] for c in listed["consumers"]} == {cid for cid, _ in results}
    assert rtsp_connections(camera.port) == 1  # twenty viewers, one ingest


async def test_a_camera_beyond_the_nodes_capacity_is_503_then_starts_when_room_frees(
        client, admin_token, start_process, start_camera):
    start_process("media-node", "registered", VAS_NODE_CAPACITY="1")
    first, second = start_camera(), start_camera()
    first_id, second_id = await add_device(client, first.url), await add_device(client, second.url)
    assert (await client.post(f"/api/v1/devices/{first_id}/start-stream",
                              timeout=60)).status_code == 200
    began = time.monotonic()
    refused = await client.post(f"/api/v1/devices/{second_id}/start-stream", timeout=60)
    elapsed = time.monotonic() - began
    assert refused.status_code == 503, refused.text
    assert refused.json()["detail"]["error_code"] == "MEDIASOUP_UNAVAILABLE"
    assert elapsed < START_DEADLINE_S + 5, elapsed
    assert rtsp_connections(second.port) == 0
    rows = (await client.get("/v2/streams", params={"camera_id": second_id},
                             headers=bearer(admin_token))).json()["streams"]
    assert [row["state"] for row in rows] == ["CLOSED"]

    assert (await client.post(f"/api/v1/devices/{first_id}/stop-stream")).json()["stopped"]
    again = await client.post(f"/api/v1/devices/{second_id}/start-stream", timeout=60)
    assert again.status_code == 200, again.text
    # The refused start, still retried by the queue meanwhile, did not come back to life.
    rows = (await client.get("/v2/streams", params={"camera_id": second_id},
                             headers=bearer(admin_token))).json()["streams"]
    assert sorted(row["state"] for row in rows) == ["CLOSED", "LIVE"]
    assert rtsp_connections(second.port) == 1


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_hung_media_node_answers_503_in_time_and_stop_still_closes(
        client, admin_token, media_node, start_camera):
    camera = start_camera()
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    stream_id = started.json()["v2_stream_id"]
    headers = bearer(admin_token)
    caps = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                             headers=headers)).json()["rtp_capabilities"]
    os.kill(media_node.proc.pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        consumed = await client.post(f"/v2/streams/{stream_id}/consume", headers=headers,
                                     json={"client_id": "x", "rtp_capabilities": caps}, timeout=60)
        elapsed = time.monotonic() - began
        assert consumed.status_code == 503, consumed.text
        assert consumed.json()["detail"]["error_code"] == "MEDIASOUP_UNAVAILABLE"
        assert elapsed < VIEWER_DEADLINE_S + 3, elapsed
        stopped = await client.delete(f"/v2/streams/{stream_id}", headers=headers, timeout=60)
        assert stopped.status_code == 204
        state = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()["state"]
        assert state == "CLOSED"
    finally:
        os.kill(media_node.proc.pid, signal.SIGCONT)

    async def ingest_gone() -> bool:
        return rtsp_connections(camera.port) == 0

    # Back from its pause, the node learns at its next lease renewal that the stream is
    # closed and ends its ingest.
    await until(ingest_gone, "the node ends the closed stream's ingest", 30)
    again = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert again.status_code == 200, again.text
