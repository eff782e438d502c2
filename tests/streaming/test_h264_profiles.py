"""An H.264 camera in a profile some consumers refuse (docs/codecs.md), through a real media
node: with `transcode: auto`, a High-profile camera is served as it is to a consumer that
takes High (the guide flow of `vas_client`, which echoes the router's codec), with no
transcoder running; a WHEP viewer offering only constrained baseline (a raw aiortc peer:
42001f, 42e01f) and a guide consumer listing only 42e01f get the stream's transcoder's
constrained baseline instead of a refusal; `transcode: never` keeps the refusal. The
OmniSight server offer lists both formats and the viewer's answer picks one.

SQLite only: codecs do not touch the backends differently.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.conftest import bearer
from tests.omnisight.conftest import BASE
from tests.streaming.test_codecs import CAMERA, _start, _transcoder
from tests.vas_fixtures import add_device, until
from vas_client import StreamConsumer, VasClient
from vas_client.gathering import gather_on

pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

BASELINE_ONLY = {
    "codecs": [{"kind": "video", "mimeType": "video/H264", "clockRate": 90000,
                "preferredPayloadType": 100,
                "parameters": {"packetization-mode": 1, "profile-level-id": "42e01f",
                               "level-asymmetry-allowed": 1},
                "rtcpFeedback": [{"type": "nack"}, {"type": "nack", "parameter": "pli"}]}],
    "headerExtensions": []}


async def _transcoding(client, headers, stream_id: str) -> dict[str, Any]:
    """The transcoder's stats once it runs and has served 10 frames (10 s at most)."""
    async def serving() -> dict[str, Any] | None:
        stats = await _transcoder(client, headers, stream_id)
        return stats if stats["running"] and stats["frames_out"] >= 10 else None

    return await until(serving, "the transcoder serving the baseline viewer", 10)


def _profile(sdp: str) -> str:
    found = re.findall(r"profile-level-id=([0-9a-fA-F]{6})", sdp)
    assert len(found) == 1, sdp
    return found[0].lower()


async def test_high_profile_camera_passthrough_for_high_and_baseline_for_the_others(
        client, admin_token, media_node, start_camera):
    camera = start_camera(h264_profile="high", **CAMERA)
    stream_id = await _start(client, camera.url)
    headers = bearer(admin_token)
    config = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()[
        "codec_config"]
    high = config["video"]["profile"]
    assert high.startswith("64"), config
    webrtc = config["webrtc"]
    assert (webrtc["profile"], webrtc["transcoded"]) == (high, False)
    assert webrtc["baseline"] == {"codec": "H264", "profile": "42e01f", "payloadType": 96,
                                  "width": 640, "height": 360, "transcoded": True,
                                  "kbps": 2500}
    idle = await until(lambda: _transcoder(client, headers, stream_id), "a metrics report", 10)
    assert idle["running"] is False and idle["starts"] == 0

    # A consumer that takes High: the camera's H.264 as it is, no transcoder.
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = admin_token, time.monotonic() + 600
    async with StreamConsumer(vas, stream_id, local_ip="127.0.0.1") as consumer:
        frames = [frame async for frame in consumer.frames(limit=10)]
        assert [f.image.shape for f in frames] == [(360, 640, 3)] * 10
        await asyncio.sleep(1.5)  # a metrics report while it watches
        stats = await _transcoder(client, headers, stream_id)
        assert stats["running"] is False and stats["starts"] == 0, stats

    # A WHEP viewer offering constrained baseline only: the transcoder's H.264.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", received.put_nowait)
    try:
        transceiver = pc.addTransceiver("video", direction="recvonly")
        await gather_on(transceiver.receiver.transport.transport._connection, "127.0.0.1")
        await pc.setLocalDescription(await pc.createOffer())
        assert "profile-level-id=64" not in pc.localDescription.sdp
        answered = await client.post(f"/v2/streams/{stream_id}/whep", headers={
            **headers, "content-type": "application/sdp"}, content=pc.localDescription.sdp)
        assert answered.status_code == 201, answered.text
        assert _profile(answered.text) == "42e01f"
        await pc.setRemoteDescription(RTCSessionDescription(answered.text, "answer"))
        track = await asyncio.wait_for(received.get(), 10)
        decoded = [await asyncio.wait_for(track.recv(), 15) for _ in range(10)]
        assert all((f.width, f.height) == (640, 360) for f in decoded)
        running = await _transcoding(client, headers, stream_id)
        assert running["starts"] == 1
    finally:
        await pc.close()
    await client.delete(answered.headers["location"], headers=headers)

    async def stopped() -> dict[str, Any] | None:
        stats = await _transcoder(client, headers, stream_id)
        return stats if not stats["running"] else None

    await until(stopped, "the transcoder stopped after the last baseline viewer", 10)

    # The guide's consume with a baseline-only client: served the transcoder's profile.
    consumed = await client.post(f"/v2/streams/{stream_id}/consume", headers=headers, json={
        "client_id": "baseline-only", "rtp_capabilities": BASELINE_ONLY})
    assert consumed.status_code == 201, consumed.text
    codec = consumed.json()["rtp_parameters"]["codecs"][0]
    assert codec["parameters"]["profile-level-id"] == "42e01f"


async def test_transcode_never_still_refuses_a_profile_the_consumer_cannot_take(
        client, admin_token, media_node, start_camera):
    camera = start_camera(h264_profile="high", **CAMERA)
    stream_id = await _start(client, camera.url, transcode="never")
    headers = bearer(admin_token)
    config = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()[
        "codec_config"]
    assert "baseline" not in config["webrtc"] and config["transcode"] == "never"
    refused = await client.post(f"/v2/streams/{stream_id}/consume", headers=headers, json={
        "client_id": "baseline-only", "rtp_capabilities": BASELINE_ONLY})
    assert refused.status_code == 400, refused.text
    assert "profile not compatible" in refused.json()["detail"]
    assert (await _transcoder(client, headers, stream_id)).get("starts", 0) == 0


def _h264_formats(sdp: str) -> list[tuple[str, str]]:
    """(payload type, profile-level-id) of each H.264 format, in order."""
    return [(pt, profile.lower()) for pt, profile in re.findall(
        r"a=fmtp:(\d+) [^\r\n]*profile-level-id=([0-9a-fA-F]{6})", sdp)]


async def _server_offer_viewer(client: Any, headers: dict[str, str], base: str,
                               takes: str | None) -> tuple[str, str, list[tuple[str, str]],
                                                           list[tuple[str, str]],
                                                           RTCPeerConnection, Any]:
    """GET a server offer and answer it from aiortc, which takes constrained baseline only;
    with `takes` (the camera's profile), as a peer that decodes that profile too: the
    offered format of that profile is accepted under its payload type. (The session's URL,
    the offer, its and the answer's H.264 formats, the peer connection, its video track;
    the camera has sound, so an audio track arrives too.)"""
    offered = await client.get(base, headers=headers, timeout=20)
    assert offered.status_code == 200, offered.text
    body = offered.json()
    offer = body["sdpOffer"]
    formats = _h264_formats(offer)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    received: asyncio.Queue[Any] = asyncio.Queue()
    pc.on("track", received.put_nowait)
    seen = offer if takes is None else offer.replace(f"profile-level-id={takes}",
                                                     "profile-level-id=42e01f")
    await pc.setRemoteDescription(RTCSessionDescription(seen, "offer"))
    await gather_on(pc.getTransceivers()[0].receiver.transport.transport._connection,
                    "127.0.0.1")
    await pc.setLocalDescription(await pc.createAnswer())
    answer = pc.localDescription.sdp
    if takes is not None:  # its answer names the format as offered, as a browser's does
        camera_pt = next(pt for pt, profile in formats if profile == takes)
        answer = re.sub(rf"(a=fmtp:{camera_pt} [^\r\n]*profile-level-id=)42e01f",
                        rf"\g<1>{takes}", answer)
    session = f"{base}/{body['sessionId']}"
    answered = await client.post(session, headers=headers, json={"sdpAnswer": answer})
    assert answered.status_code == 204, answered.text
    again = await client.post(session, headers=headers, json={"sdpAnswer": answer})
    assert again.status_code == 409, again.text  # whichever Router serves it
    tracks = {}
    for _ in range(2):  # the camera's sound comes along
        track = await asyncio.wait_for(received.get(), 10)
        tracks[track.kind] = track
    return session, offer, formats, _h264_formats(answer), pc, tracks["video"]


async def test_server_offer_lists_the_cameras_profile_then_baseline_and_the_answer_picks(
        client, admin_token, media_node, start_camera):
    camera = start_camera(h264_profile="high", audio=True, audio_codec="aac", **CAMERA)
    headers = bearer(admin_token)
    camera_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{camera_id}/start-stream", timeout=60,
                                headers=headers)
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    high = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()[
        "codec_config"]["video"]["profile"].lower()
    assert high.startswith("64")
    base = f"{BASE}/cameras/{camera_id}/live/webrtc"
    await until(lambda: _transcoder(client, headers, stream_id), "a metrics report", 10)

    # A viewer that decodes High: the camera's H.264 as it is, no transcoder.
    session, offer, offered, answered, pc, track = await _server_offer_viewer(
        client, headers, base, takes=high)
    try:
        assert "a=group:BUNDLE audio video" in offer  # the sound as before
        assert "opus/48000/2" in offer[offer.index("m=audio"):offer.index("m=video")]
        assert [profile for _, profile in offered] == [high, "42e01f"]
        assert len({pt for pt, _ in offered}) == 2
        assert re.search(rf"a=fmtp:{offered[1][0]} [^\r\n]*packetization-mode=1", offer)
        assert offered[0][0] in {pt for pt, _ in answered}
        frames = [await asyncio.wait_for(track.recv(), 15) for _ in range(10)]
        assert all((f.width, f.height) == (640, 360) for f in frames)
        await asyncio.sleep(1.5)  # a metrics report while it watches
        stats = await _transcoder(client, headers, stream_id)
        assert stats["running"] is False and stats["starts"] == 0, stats
    finally:
        await pc.close()
    assert (await client.delete(session, headers=headers)).status_code == 204

    # A viewer that takes constrained baseline only: the transcoder's H.264, on demand.
    session, offer, offered, answered, pc, track = await _server_offer_viewer(
        client, headers, base, takes=None)
    try:
        assert answered == [(offered[1][0], "42e01f")]
        frames = [await asyncio.wait_for(track.recv(), 15) for _ in range(10)]
        assert all((f.width, f.height) == (640, 360) for f in frames)
        running = await _transcoding(client, headers, stream_id)
        assert running["starts"] == 1
    finally:
        await pc.close()
    assert (await client.delete(session, headers=headers)).status_code == 204

    async def stopped() -> dict[str, Any] | None:
        stats = await _transcoder(client, headers, stream_id)
        return stats if not stats["running"] else None

    await until(stopped, "the transcoder stopped after the last baseline viewer", 10)
