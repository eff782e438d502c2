"""OmniSight live WebRTC with a server offer, from Python (aiortc): GET the offer, answer,
decode video, listed among the stream's consumers, DELETE ends it; bad input refused."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of
from tests.streaming.conftest import FAST
from tests.vas_fixtures import add_device, until
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
    assert "m=audio" not in body["sdpOffer"]  # a camera without sound: video only
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


async def _answer(client, headers, base: str, reject_audio: bool = False):
    """GET an offer, answer it from aiortc (the audio section refused when asked): the
    session's URL, the offer, the peer connection and a queue of its received tracks."""
    offered = await client.get(base, headers=headers, timeout=20)
    assert offered.status_code == 200, offered.text
    body = offered.json()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Queue = asyncio.Queue()
    pc.on("track", lambda track: received.put_nowait(track))
    await pc.setRemoteDescription(RTCSessionDescription(body["sdpOffer"], "offer"))
    await gather_on(pc.getTransceivers()[0].receiver.transport.transport._connection,
                    "127.0.0.1")
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    if reject_audio:  # as a viewer that takes no sound: port 0
        answer = re.sub(r"m=audio \d+ ", "m=audio 0 ", answer)
        assert "m=audio 0 " in answer
    session = f"{base}/{body['sessionId']}"
    answered = await client.post(session, headers=headers, json={"sdpAnswer": answer})
    assert answered.status_code == 204, answered.text
    return session, body["sdpOffer"], pc, received


async def test_server_offer_carries_the_cameras_sound_as_opus(client, admin_token, media_node,
                                                             start_camera):
    headers = bearer(admin_token)
    camera = start_camera(fps=15, gop=15, audio=True, audio_codec="aac", tone_hz=660)
    camera_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{camera_id}/start-stream", timeout=40,
                                headers=headers)
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    base = f"{BASE}/cameras/{camera_id}/live/webrtc"

    async def opus(running: bool):
        health = (await client.get(f"/v2/streams/{stream_id}/health", headers=headers)).json()
        stats = health["codecs"]["audio_transcoder"]
        return stats if stats is not None and stats["running"] is running else None

    session, offer, pc, received = await _answer(client, headers, base)
    try:
        assert "a=group:BUNDLE audio video" in offer
        audio_section = offer[offer.index("m=audio"):offer.index("m=video")]
        assert "opus/48000/2" in audio_section and "a=sendonly" in audio_section
        assert "H264" not in audio_section
        tracks = {}
        for _ in range(2):
            track = await asyncio.wait_for(received.get(), 10)
            tracks[track.kind] = track
        frames = [await asyncio.wait_for(tracks["video"].recv(), 15) for _ in range(5)]
        assert all((f.width, f.height) == (640, 360) for f in frames)
        sound = [await asyncio.wait_for(tracks["audio"].recv(), 10) for _ in range(50)]
        assert all(f.sample_rate == 48000 for f in sound)
        assert max(abs(int(v)) for f in sound[-10:] for v in f.to_ndarray().ravel()) > 1000
        running = await until(lambda: opus(True), "the Opus transcoder running", 10)
        assert running["starts"] == 1
    finally:
        await pc.close()
    assert (await client.delete(session, headers=headers)).status_code == 204
    stopped = await until(lambda: opus(False), "the Opus transcoder stopped", 10)
    assert stopped["starts"] == 1

    # A viewer that refuses the sound still gets the video.
    session, offer, pc, received = await _answer(client, headers, base, reject_audio=True)
    try:
        tracks = {}
        for _ in range(2):
            track = await asyncio.wait_for(received.get(), 10)
            tracks[track.kind] = track
        frames = [await asyncio.wait_for(tracks["video"].recv(), 15) for _ in range(5)]
        assert all((f.width, f.height) == (640, 360) for f in frames)
        # Taken with the offer, released with the refusal: no audio runs for this viewer.
        await until(lambda: opus(False), "the Opus transcoder idle", 10)
        listed = await until(lambda: _connected(client, headers, stream_id, session),
                             "the session CONNECTED", 10)
        assert listed["state"] == "CONNECTED"
    finally:
        await pc.close()
    assert (await client.delete(session, headers=headers)).status_code == 204


async def _connected(client, headers, stream_id: str, session: str):
    consumer = await _consumer(client, headers, stream_id, session.rsplit("/", 1)[1])
    return consumer if consumer["state"] == "CONNECTED" else None
