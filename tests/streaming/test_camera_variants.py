"""Cameras that are not the friendly default: Main and High profile H.264, a camera with an
audio track, and basic auth — each ingested once, LIVE, recorded, snapshotted and watched."""

from __future__ import annotations

import io
import time

import av
import pytest

from tests.conftest import bearer
from tests.vas_fixtures import add_device, rtsp_connections, until
from vas_client import StreamConsumer, VasClient

pytestmark = pytest.mark.slow




async def _watch(client, token: str, stream_id: str, count: int) -> list:
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = token, time.monotonic() + 600
    async with StreamConsumer(vas, stream_id, local_ip="127.0.0.1") as consumer:
        return [frame async for frame in consumer.frames(limit=count)]


@pytest.mark.parametrize("profile, prefix, ffmpeg_name", [
    ("main", "4d", "Main"),
    ("high", "64", "High"),
])
async def test_main_and_high_profile_cameras(client, admin_token, media_node, worker,
                                             start_camera, profile, prefix, ffmpeg_name):
    camera = start_camera(h264_profile=profile, width=640, height=360, fps=15, gop=15)
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    headers = bearer(admin_token)
    video = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()[
        "codec_config"]["video"]
    assert video["profile"].startswith(prefix), video
    capabilities = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                                     headers=headers)).json()["rtp_capabilities"]
    assert capabilities["codecs"][0]["parameters"]["profile-level-id"] == video["profile"]

    frames = await _watch(client, admin_token, stream_id, 10)
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 10

    snapshot = (await client.post(f"/v2/streams/{stream_id}/snapshots", headers=headers,
                                  json={"source": "live"})).json()

    async def snapshot_ready():
        row = (await client.get(f"/v2/snapshots/{snapshot['id']}", headers=headers)).json()
        return row if row["status"] == "ready" else None

    ready = await until(snapshot_ready, "snapshot", 30)
    assert (ready["width"], ready["height"]) == (640, 360)

    async def segment():
        playlist = await client.get(f"/v2/streams/{stream_id}/hls/playlist.m3u8", headers=headers)
        names = [line for line in playlist.text.splitlines() if line and line[0] != "#"]
        return names[0].rsplit("/", 1)[-1] if names else None

    name = await until(segment, "a recorded segment", 30)
    data = (await client.get(f"/v2/streams/{stream_id}/hls/{name}", headers=headers)).content
    with av.open(io.BytesIO(data), format="mpegts") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.profile == ffmpeg_name
        decoded = [f for f in container.decode(stream)]
    assert decoded and (decoded[0].width, decoded[0].height) == (640, 360)
    assert rtsp_connections(camera.port) == 1


async def test_a_camera_with_audio_streams_its_video(client, admin_token, media_node,
                                                     start_camera):
    camera = start_camera(audio=True)
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    frames = await _watch(client, admin_token, stream_id, 10)
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 10
    health = (await client.get(f"/v2/streams/{stream_id}/health",
                               headers=bearer(admin_token))).json()
    assert health["state"] == "LIVE" and health["last_error"] is None


async def test_a_camera_with_basic_auth(client, admin_token, media_node, start_camera):
    camera = start_camera(user="operator", password="b4sic-s3cret", auth_method="basic")
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    assert "b4sic-s3cret" not in started.text
    frames = await _watch(client, admin_token, started.json()["v2_stream_id"], 5)
    assert len(frames) == 5
    device = (await client.get(f"/api/v1/devices/{device_id}")).json()
    assert "b4sic-s3cret" not in str(device) and "operator:******@" in device["rtsp_url"]
    assert "b4sic-s3cret" not in media_node.output
