"""An H.264 camera in a profile some consumers refuse (docs/codecs.md), through a real media
node: with `transcode: auto`, a High-profile camera is served as it is to a consumer that
takes High (the guide flow of `vas_client`, which echoes the router's codec), with no
transcoder running; a WHEP viewer offering only constrained baseline (a raw aiortc peer:
42001f, 42e01f) and a guide consumer listing only 42e01f get the stream's transcoder's
constrained baseline instead of a refusal; `transcode: never` keeps the refusal.

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
from tests.streaming.test_codecs import CAMERA, _start, _transcoder
from tests.vas_fixtures import until
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

        async def transcoding() -> dict[str, Any] | None:
            stats = await _transcoder(client, headers, stream_id)
            return stats if stats["running"] and stats["frames_out"] >= 10 else None

        running = await until(transcoding, "the transcoder serving the baseline viewer", 10)
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
