"""Guide §3.4 end to end in Python: consume/connect against a real camera and media node,
decoded frames, the consumer list, transport loss, bad input; WHEP; the Python consumer."""

from __future__ import annotations

import asyncio
import time
import uuid

import av
import pytest

from tests.camera import read_frame_timestamp
from tests.conftest import bearer
from tests.vas_fixtures import add_device, rtsp_connections
from vas_client import StreamConsumer, VasClient
from vas_client.http import VasError

pytestmark = pytest.mark.slow


async def _live_stream(client, start_camera, **profile) -> tuple[str, object]:
    camera = start_camera(**profile)
    device_id = await add_device(client, camera.url)
    answer = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert answer.status_code == 200, answer.text
    return answer.json()["v2_stream_id"], camera


def _vas(client, settings) -> VasClient:
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client  # the in-process app, same database and Redis as the media node
    return vas


@pytest.mark.parametrize("mode", ["guide", "whep"])
async def test_python_consumer_starts_from_the_gop_cache(client, admin_token, media_node,
                                                         start_camera, settings, mode):
    stream_id, _ = await _live_stream(client, start_camera, width=320, height=240, fps=15, gop=60,
                                      pattern="smpte", overlay_time=True)
    headers = bearer(admin_token)
    for _ in range(100):  # the node has reported video: its GOP cache holds a keyframe
        health = (await client.get(f"/v2/streams/{stream_id}/health", headers=headers)).json()
        if health["metrics"]["fps"] > 0:
            break
        await asyncio.sleep(0.1)
    vas = _vas(client, settings)
    vas._access, vas._expires_at = admin_token, time.monotonic() + 600
    asked_at = time.time()
    async with StreamConsumer(vas, stream_id, mode=mode, local_ip="127.0.0.1") as consumer:
        frames = [f async for f in consumer.frames(limit=20)]
        assert all(f.image.shape == (240, 320, 3) for f in frames)
        assert frames[0].image.mean() > 50  # colour bars, not a black or grey frame
        # A 4 s GOP: the first frame was filmed before the consumer asked, so it is the
        # cached keyframe, not the next one the camera sends.
        filmed = read_frame_timestamp(av.VideoFrame.from_ndarray(frames[0].image,
                                                                 format="rgb24"))
        assert filmed is not None and filmed < asked_at, (filmed, asked_at)
        for _ in range(50):  # the node records CONNECTED as it sees it
            listed = (await client.get(f"/v2/streams/{stream_id}/consumers",
                                       headers=headers)).json()
            mine = next(c for c in listed["consumers"] if c["id"] == consumer.consumer_id)
            if mine["state"] == "CONNECTED":
                break
            await asyncio.sleep(0.1)
        assert mine["state"] == "CONNECTED"
        # What a viewer can say about its own side when frames stop (the soak reports it).
        local = await consumer.transport_state()
        assert (local["ice"], local["dtls"], local["track_ended"]) == ("completed", "connected",
                                                                        False), local
        assert local["packets"] >= 20, local  # at least one RTP packet per frame
        if mode == "whep":
            assert local["connection"] == "connected", local
        detail = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()
        assert detail["consumers"] == {"count": 1, "active": 1}
    listed = (await client.get(f"/v2/streams/{stream_id}/consumers",
                               headers=bearer(admin_token))).json()
    mine = next(c for c in listed["consumers"] if c["id"] == consumer.consumer_id)
    assert mine["state"] == "CLOSED" and mine["closed_at"] is not None


async def test_consume_refuses_bad_input_and_wrong_states(client, admin_token, media_node,
                                                          start_camera):
    stream_id, _ = await _live_stream(client, start_camera)
    headers = bearer(admin_token)
    caps = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                             headers=headers)).json()["rtp_capabilities"]
    codec = caps["codecs"][0]
    assert isinstance(codec["preferredPayloadType"], int)
    assert codec["parameters"]["packetization-mode"] == 1
    assert all("kind" in e and isinstance(e["preferredId"], int) for e in caps["headerExtensions"])

    cases = [
        ({"client_id": "x"}, 400),
        ({"client_id": "x", "rtp_capabilities": "nope"}, 400),
        ({"client_id": "x", "rtp_capabilities": {"codecs": [{"mimeType": "video/VP8",
          "kind": "video", "clockRate": 90000}]}}, 400),
        ({"client_id": "x", "rtp_capabilities": {"codecs": [{**codec, "parameters": {
          **codec["parameters"], "packetization-mode": 0}}]}}, 400),
    ]
    for body, status in cases:
        response = await client.post(f"/v2/streams/{stream_id}/consume", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert isinstance(response.json()["detail"], str)
    mismatch = await client.post(f"/v2/streams/{stream_id}/consume", json=cases[2][0], headers=headers)
    assert "H264" in mismatch.json()["detail"] or "H.264" in mismatch.json()["detail"]

    ok = await client.post(f"/v2/streams/{stream_id}/consume",
                           json={"client_id": "x", "rtp_capabilities": caps}, headers=headers)
    assert ok.status_code == 201, ok.text
    consumer = ok.json()
    assert consumer["transport"]["ice_parameters"]["iceLite"] is True
    assert consumer["rtp_parameters"]["codecs"][0]["payloadType"] == codec["preferredPayloadType"]
    assert consumer["rtp_parameters"]["encodings"][0]["ssrc"] != 1234
    cid = consumer["consumer_id"]
    base = f"/v2/streams/{stream_id}/consumers/{cid}"
    for body in ({}, {"dtls_parameters": {}}, {"dtls_parameters": {"fingerprints": "x"}},
                 {"dtls_parameters": {"role": "client", "fingerprints": [{"algorithm": "md5",
                                                                         "value": "zz"}]}}):
        response = await client.post(f"{base}/connect", json=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
    assert (await client.post(f"/v2/streams/{stream_id}/consumers/{uuid.uuid4()}/connect",
                              json={"dtls_parameters": {}}, headers=headers)).status_code in (400, 404)
    assert (await client.post(f"/v2/streams/{stream_id}/consumers/nope/connect", json={},
                              headers=headers)).status_code == 400
    candidate = await client.post(f"{base}/ice-candidate", headers=headers, json={
        "candidate": {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
                      "sdpMLineIndex": 0, "sdpMid": "0"}})
    assert candidate.status_code == 200, candidate.text
    assert candidate.json() == {"status": "acknowledged", "consumer_id": cid}
    assert (await client.delete(base, headers=headers)).status_code == 204
    assert (await client.delete(base, headers=headers)).status_code == 204

    await client.post(f"/api/v1/devices/{(await client.get(f'/v2/streams/{stream_id}', headers=headers)).json()['camera_id']}/stop-stream")
    closed = await client.post(f"/v2/streams/{stream_id}/consume",
                               json={"client_id": "x", "rtp_capabilities": caps}, headers=headers)
    assert closed.status_code == 409
    whep = await client.post(f"/v2/streams/{stream_id}/whep", content=b"v=0",
                             headers={**headers, "Content-Type": "application/sdp"})
    assert whep.status_code == 409


async def test_silent_transport_is_closed_and_shown_so(client, admin_token, start_process,
                                                       start_camera, settings_env):
    settings_env["VAS_WEBRTC_SILENCE_TIMEOUT_MS"] = "2000"
    start_process("media-node", "registered")
    stream_id, _ = await _live_stream(client, start_camera)
    headers = bearer(admin_token)
    caps = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                             headers=headers)).json()["rtp_capabilities"]
    consumer = (await client.post(f"/v2/streams/{stream_id}/consume", headers=headers,
                                  json={"client_id": "ghost", "rtp_capabilities": caps})).json()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=headers)).json()
        state = next(c for c in listed["consumers"] if c["id"] == consumer["consumer_id"])["state"]
        if state == "CLOSED":
            break
        await asyncio.sleep(0.2)
    assert state == "CLOSED"
    assert listed["active_consumers"] == 0


async def test_python_client_errors_carry_the_guide_detail(client):
    vas = VasClient("http://127.0.0.1", "nobody", "wrong")
    vas._http = client
    with pytest.raises(VasError) as caught:
        await vas.devices() if False else await vas.token()
    assert caught.value.status == 401 and caught.value.detail == "Invalid client credentials"


async def test_connected_viewer_that_vanishes_is_closed(client, admin_token, start_process,
                                                        start_camera, settings_env):
    settings_env["VAS_WEBRTC_SILENCE_TIMEOUT_MS"] = "3000"
    start_process("media-node", "registered")
    stream_id, _ = await _live_stream(client, start_camera)
    headers = bearer(admin_token)
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = admin_token, time.monotonic() + 600
    consumer = StreamConsumer(vas, stream_id, local_ip="127.0.0.1")
    await consumer.start()
    assert [f async for f in consumer.frames(limit=5)]

    async def state() -> str:
        listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=headers)).json()
        return next(c["state"] for c in listed["consumers"] if c["id"] == consumer.consumer_id)

    for _ in range(50):  # the node records CONNECTED as it sees it
        if await state() == "CONNECTED":
            break
        await asyncio.sleep(0.1)
    assert await state() == "CONNECTED"
    # Gone without a goodbye: sockets closed, no DELETE, no DTLS close_notify.
    consumer._reader.cancel()
    await consumer._closers[0]()  # the ICE transport
    assert (await consumer.transport_state())["ice"] == "closed"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and await state() != "CLOSED":
        await asyncio.sleep(0.2)
    assert await state() == "CLOSED"
    for closer in consumer._closers[1:]:
        await closer()


async def test_stopping_a_stream_closes_its_connected_viewers(client, admin_token, media_node,
                                                              start_camera):
    stream_id, camera = await _live_stream(client, start_camera)
    headers = bearer(admin_token)
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = admin_token, time.monotonic() + 600
    async with StreamConsumer(vas, stream_id, local_ip="127.0.0.1") as viewer:
        assert len([f async for f in viewer.frames(limit=5)]) == 5
        stream = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()
        stopped = await client.post(f"/api/v1/devices/{stream['camera_id']}/stop-stream")
        assert stopped.json()["stopped"] is True
        listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=headers)).json()
        mine = next(c for c in listed["consumers"] if c["id"] == viewer.consumer_id)
        assert mine["state"] == "CLOSED" and mine["closed_at"] is not None
        assert listed["active_consumers"] == 0
    assert (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()["state"] == \
        "CLOSED"
    assert rtsp_connections(camera.port) == 0
