"""OmniSight live WebRTC with a server offer, from Python (aiortc): GET the offer, answer,
decode video, listed among the stream's consumers, DELETE ends it; bad input refused."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of
from tests.streaming.conftest import FAST
from tests.vas_fixtures import add_device
from vas_client.gathering import gather_on

pytestmark = pytest.mark.slow


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, **FAST}


async def _consumer(client, headers, stream_id: str, session_id: str) -> dict:
    listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=headers)).json()
    return next(c for c in listed["consumers"] if c["id"] == session_id)


async def test_server_offer_session_decodes_in_aiortc(client, admin_token, media_node,
                                                     start_camera):
    headers = bearer(admin_token)
    camera = start_camera(fps=15, gop=60)  # a 4 s GOP: the first frame is the cached one
    camera_id = await add_device(client, camera.url)
    base = f"{BASE}/cameras/{camera_id}/live/webrtc"
    idle = await client.get(base, headers=headers)
    assert idle.status_code == 409 and error_of(idle)["code"] == "CONFLICT"
    started = await client.post(f"/api/v1/devices/{camera_id}/start-stream", timeout=40,
                                headers=headers)
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]

    offered = await client.get(base, headers=headers, timeout=20)
    assert offered.status_code == 200, offered.text
    body = offered.json()
    assert set(body) == {"sdpOffer", "sessionId", "iceServers"} and body["iceServers"] == []
    assert "m=video" in body["sdpOffer"] and "a=sendonly" in body["sdpOffer"]
    session = f"{base}/{body['sessionId']}"
    assert (await _consumer(client, headers, stream_id, body["sessionId"]))["state"] == "NEW"

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Queue = asyncio.Queue()
    pc.on("track", lambda track: received.put_nowait(track))
    try:
        await pc.setRemoteDescription(RTCSessionDescription(body["sdpOffer"], "offer"))
        await gather_on(pc.getTransceivers()[0].receiver.transport.transport._connection,
                        "127.0.0.1")
        await pc.setLocalDescription(await pc.createAnswer())
        bad = await client.post(session, headers=headers, json={"sdpAnswer": "v=0"})
        assert bad.status_code == 400 and error_of(bad)["code"] == "VALIDATION_ERROR"
        answered = await client.post(session, headers=headers,
                                     json={"sdpAnswer": pc.localDescription.sdp})
        assert answered.status_code == 204, answered.text
        again = await client.post(session, headers=headers,
                                  json={"sdpAnswer": pc.localDescription.sdp})
        assert again.status_code == 409 and error_of(again)["code"] == "CONFLICT"
        track = await asyncio.wait_for(received.get(), 10)
        frames = [await asyncio.wait_for(track.recv(), 15) for _ in range(10)]
        assert all((f.width, f.height) == (640, 360) for f in frames)
        deadline = time.monotonic() + 10
        while (await _consumer(client, headers, stream_id, body["sessionId"]))["state"] \
                != "CONNECTED":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        await pc.close()
    ended = await client.delete(session, headers=headers)
    assert ended.status_code == 204
    assert (await _consumer(client, headers, stream_id, body["sessionId"]))["state"] == "CLOSED"
    assert (await client.delete(session, headers=headers)).status_code == 204
    for path in (f"{base}/{uuid.uuid4()}", f"{base}/nope"):
        missing = await client.post(path, headers=headers, json={"sdpAnswer": "v=0"})
        assert missing.status_code == 404 and error_of(missing)["code"] == "RESOURCE_NOT_FOUND"
    unknown = await client.post(session, headers=headers, json={"answer": "x"})
    assert unknown.status_code == 400 and error_of(unknown)["code"] == "VALIDATION_ERROR"
