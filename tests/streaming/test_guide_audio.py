"""The guide's mediasoup flow with the camera's sound (docs/codecs.md), through a real media
node and worker: start-stream names `producers.audio` only for a camera with audio,
router-capabilities list Opus only then, `consume` with `kind: audio` gives a consumer of
its own whose Opus carries the camera's tone, from the stream's one Opus transcoder shared
with WHEP; bad kinds are 400s; audio consumers count against both consumer bounds.

SQLite only: audio does not touch the backends.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import bearer, token_for
from tests.media.webrtc.ortc_client import chrome_like_caps
from tests.vas_fixtures import add_device, until
from vas_client import StreamConsumer, VasClient

pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

TONE_HZ = 880
SCOPES = ["streams:consume", "streams:read"]
CAMERA = {"width": 640, "height": 360, "fps": 15, "gop": 15}


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "VAS_MAX_CONSUMERS_PER_CLIENT": "2",
            "VAS_MAX_CONSUMERS_PER_STREAM": "3"}


def _vas(client: httpx.AsyncClient, token: str) -> VasClient:
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = token, time.monotonic() + 600
    return vas


async def _start(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    device_id = await add_device(client, url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    again = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert again.json()["reconnect"] is True
    assert again.json()["producers"] == started.json()["producers"]  # stable ids
    return dict(started.json())


def _dominant_hz(samples: list[Any]) -> float:
    signal = np.concatenate(samples)[-48000:].astype(float)
    spectrum = np.abs(np.fft.rfft(signal))
    spectrum[0] = 0
    return float(np.argmax(spectrum)) * 48000 / len(signal)


async def test_aac_camera_in_the_guide_flow_with_audio(
        client, admin_token, media_node, worker, start_camera):
    camera = start_camera(**CAMERA, audio=True, audio_codec="aac", tone_hz=TONE_HZ)
    started = await _start(client, camera.url)
    stream_id = started["v2_stream_id"]
    producers = started["producers"]
    assert set(producers) == {"video", "audio"}
    assert producers["audio"].startswith("producer-") and producers["audio"] != producers["video"]
    admin = bearer(admin_token)
    caps = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                             headers=admin)).json()["rtp_capabilities"]
    assert [c["mimeType"] for c in caps["codecs"]] == ["video/H264", "audio/opus"]
    opus = caps["codecs"][1]
    assert (opus["kind"], opus["clockRate"], opus["channels"], opus["preferredPayloadType"]) \
        == ("audio", 48000, 2, 101)
    device_caps = chrome_like_caps(caps)

    # Refusals first (each a 400 in the guide's shape, never a 500).
    unknown = await client.post(f"/v2/streams/{stream_id}/consume", headers=admin, json={
        "client_id": "x", "rtp_capabilities": device_caps, "kind": "data"})
    assert unknown.status_code == 400, unknown.text
    assert set(unknown.json()) == {"detail"} and "kind" in unknown.json()["detail"]
    no_opus = dict(device_caps, codecs=device_caps["codecs"][:1])
    refused = await client.post(f"/v2/streams/{stream_id}/consume", headers=admin, json={
        "client_id": "x", "rtp_capabilities": no_opus, "kind": "audio"})
    assert refused.status_code == 400, refused.text
    assert "no Opus codec" in refused.json()["detail"]

    async def opus_transcoder(running: bool) -> dict[str, Any] | None:
        health = (await client.get(f"/v2/streams/{stream_id}/health", headers=admin)).json()
        stats = health["codecs"]["audio_transcoder"]
        return stats if stats is not None and stats["running"] is running else None

    idle = await until(lambda: opus_transcoder(False), "the idle Opus transcoder", 10)
    assert idle["starts"] == 0

    # The guide's flow (vas_client guide mode): a video consumer and an audio consumer.
    other_token = await token_for(client, admin_token, SCOPES)
    samples: list[Any] = []
    async with StreamConsumer(_vas(client, admin_token), stream_id, audio=True,
                              local_ip="127.0.0.1") as guide:
        assert guide.consumer_id and guide.audio_consumer_id
        frames = [frame async for frame in guide.frames(limit=5)]
        assert frames[-1].image.shape == (360, 640, 3)
        async for frame in guide.audio_frames():
            samples.append(frame.samples)
            assert frame.sample_rate == 48000
            if sum(len(s) for s in samples) >= 48000:  # one second
                break
        listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=admin)).json()
        states = {c["id"]: c["state"] for c in listed["consumers"]}
        assert states[guide.consumer_id] == states[guide.audio_consumer_id] == "CONNECTED"

        # WHEP's audio shares the one transcoder (another caller: its own seat).
        async with StreamConsumer(_vas(client, other_token), stream_id,
                                  mode="whep", audio=True, local_ip="127.0.0.1") as whep:
            [frame async for frame in whep.audio_frames(limit=5)]
            running = await until(lambda: opus_transcoder(True), "Opus transcoder running", 10)
            assert running["starts"] == 1, running

            # Both bounds count audio consumers: the admin has 2 open (video + audio)...
            again = await client.post(f"/v2/streams/{stream_id}/consume", headers=admin,
                                      json={"client_id": "x", "rtp_capabilities": device_caps,
                                            "kind": "audio"})
            assert again.status_code == 429, again.text
            # ...and the stream has 3 (video, audio, WHEP): a third caller is refused.
            third = bearer(await token_for(client, admin_token, SCOPES))
            full = await client.post(f"/v2/streams/{stream_id}/consume", headers=third,
                                     json={"client_id": "x", "rtp_capabilities": device_caps,
                                           "kind": "audio"})
            assert full.status_code == 409, full.text
            assert "VAS_MAX_CONSUMERS_PER_STREAM" in full.json()["detail"]

    stopped = await until(lambda: opus_transcoder(False), "the Opus transcoder stopped", 10)
    assert stopped["starts"] == 1 and stopped["packets_out"] >= 50
    listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=admin)).json()
    assert all(c["state"] == "CLOSED" for c in listed["consumers"]), listed
    dominant = _dominant_hz(samples)
    assert abs(dominant - TONE_HZ) < 10, f"dominant {dominant:.0f} Hz"


async def test_camera_without_audio_keeps_the_guide_answers(
        client, admin_token, media_node, worker, start_camera):
    camera = start_camera(**CAMERA)
    started = await _start(client, camera.url)
    stream_id = started["v2_stream_id"]
    assert set(started["producers"]) == {"video"}
    admin = bearer(admin_token)
    caps = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                             headers=admin)).json()["rtp_capabilities"]
    assert [c["mimeType"] for c in caps["codecs"]] == ["video/H264"]
    assert {e["kind"] for e in caps["headerExtensions"]} == {"video"}
    refused = await client.post(f"/v2/streams/{stream_id}/consume", headers=admin, json={
        "client_id": "x", "rtp_capabilities": caps, "kind": "audio"})
    assert refused.status_code == 400, refused.text
    assert refused.json() == {"detail": "This stream has no audio: its camera sends none "
                                        "(codec_config has no 'audio')"}
    # vas_client asked for audio still watches a camera without it (no audio consumer).
    async with StreamConsumer(_vas(client, admin_token), stream_id, audio=True,
                              local_ip="127.0.0.1") as guide:
        assert [f async for f in guide.frames(limit=3)] and guide.audio_consumer_id is None
