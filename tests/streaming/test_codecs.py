"""Cameras that do not send H.264 (docs/codecs.md), through a real media node and worker:
an H.265 camera goes LIVE, is recorded as H.265 and watched as H.264 through the stream's
transcoder, which runs only while someone watches; `transcode: never` refuses WebRTC with
the reason; an MJPEG camera is recorded and watched as H.264.

SQLite only: codecs do not touch the backends differently.
"""

from __future__ import annotations

import io
import time
from typing import Any

import av
import pytest

from tests.conftest import bearer
from tests.vas_fixtures import add_device, until
from vas_client import StreamConsumer, VasClient

pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

CAMERA = {"width": 640, "height": 360, "fps": 15, "gop": 15}


async def _watch(client: Any, token: str, stream_id: str, count: int) -> list[Any]:
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = token, time.monotonic() + 600
    async with StreamConsumer(vas, stream_id, local_ip="127.0.0.1") as consumer:
        return [frame async for frame in consumer.frames(limit=count)]


async def _start(client: Any, camera_url: str, **fields: Any) -> str:
    device_id = await add_device(client, camera_url, **fields)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    return str(started.json()["v2_stream_id"])


async def _segment(client: Any, headers: dict[str, str], stream_id: str) -> bytes:
    async def first() -> str | None:
        playlist = await client.get(f"/v2/streams/{stream_id}/hls/playlist.m3u8",
                                    headers=headers)
        names = [line for line in playlist.text.splitlines() if line and line[0] != "#"]
        return names[0].rsplit("/", 1)[-1] if names else None

    name = await until(first, "a recorded segment", 30)
    return (await client.get(f"/v2/streams/{stream_id}/hls/{name}", headers=headers)).content


async def _transcoder(client: Any, headers: dict[str, str], stream_id: str) -> dict[str, Any]:
    health = (await client.get(f"/v2/streams/{stream_id}/health", headers=headers)).json()
    return dict(health["codecs"]["transcoder"] or {})


async def test_h265_camera_recorded_as_h265_and_watched_as_h264(
        client, admin_token, media_node, worker, start_camera):
    camera = start_camera(codec="h265", **CAMERA)
    stream_id = await _start(client, camera.url)
    headers = bearer(admin_token)
    config = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()[
        "codec_config"]
    assert config["video"]["codec"] == "H265" and config["video"]["width"] == 640
    assert config["webrtc"]["codec"] == "H264" and config["webrtc"]["transcoded"] is True
    assert config["webrtc"]["profile"] == "42e01f" and config["recording"]["codec"] == "H265"
    capabilities = (await client.get(f"/v2/streams/{stream_id}/router-capabilities",
                                     headers=headers)).json()["rtp_capabilities"]
    assert capabilities["codecs"][0]["parameters"]["profile-level-id"] == "42e01f"
    # Nobody watches yet: the transcoder has not run.
    idle = await until(lambda: _transcoder(client, headers, stream_id), "a metrics report", 10)
    assert idle["running"] is False and idle["starts"] == 0

    frames = await _watch(client, admin_token, stream_id, 10)
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 10

    async def stopped() -> dict[str, Any] | None:
        stats = await _transcoder(client, headers, stream_id)
        return stats if stats["starts"] == 1 and not stats["running"] else None

    # The only viewer left: the transcoder stopped with it.
    stats = await until(stopped, "the transcoder stopped", 10)
    assert stats["frames_out"] >= 10

    with av.open(io.BytesIO(await _segment(client, headers, stream_id)),
                 format="mpegts") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc"
        decoded = list(container.decode(stream))
    assert decoded and (decoded[0].width, decoded[0].height) == (640, 360)

    created = await client.post(f"/v2/streams/{stream_id}/bookmarks", headers=headers, json={
        "source": "live", "label": "h265", "before_seconds": 2, "after_seconds": 1})
    assert created.status_code == 201, created.text

    async def bookmark_ready() -> dict[str, Any] | None:
        row = (await client.get(f"/v2/bookmarks/{created.json()['id']}", headers=headers)).json()
        assert row["status"] != "failed", row
        return row if row["status"] == "ready" else None

    ready = await until(bookmark_ready, "the bookmark", 45)
    video = (await client.get(ready["video_url"], headers=headers)).content
    with av.open(io.BytesIO(video)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
        clip = list(container.decode(video=0))
    assert clip and (clip[0].width, clip[0].height) == (640, 360)


async def test_transcode_never_refuses_webrtc_and_always_scales_h264(
        client, admin_token, media_node, start_camera):
    camera = start_camera(codec="h265", **CAMERA)
    stream_id = await _start(client, camera.url, transcode="never")
    headers = bearer(admin_token)
    refused = await client.get(f"/v2/streams/{stream_id}/router-capabilities", headers=headers)
    assert refused.status_code == 400 and "H265" in refused.json()["detail"]
    consume = await client.post(f"/v2/streams/{stream_id}/consume", headers=headers, json={
        "client_id": "test", "rtp_capabilities": {"codecs": [], "headerExtensions": []}})
    assert consume.status_code == 400, consume.text
    assert "never" in consume.json()["detail"] and "H265" in consume.json()["detail"]
    whep = await client.post(f"/v2/streams/{stream_id}/whep", headers={
        **headers, "content-type": "application/sdp"}, content="v=0\r\n")
    assert whep.status_code == 400, whep.text
    # Recording is not affected.
    assert len(await _segment(client, headers, stream_id)) > 0

    # `always` with a size: an H.264 camera is served scaled, recorded as it is.
    h264 = start_camera(**CAMERA)
    scaled = await _start(client, h264.url, transcode="always", transcode_width=320,
                          transcode_kbps=300)
    config = (await client.get(f"/v2/streams/{scaled}", headers=headers)).json()[
        "codec_config"]
    assert config["video"]["codec"] == "H264" and config["video"]["width"] == 640
    assert config["webrtc"]["transcoded"] is True and config["webrtc"]["width"] == 320
    assert config["webrtc"]["kbps"] == 300 and config["recording"]["codec"] == "H264"
    frames = await _watch(client, admin_token, scaled, 5)
    assert [f.image.shape for f in frames] == [(180, 320, 3)] * 5


async def test_mjpeg_camera_recorded_and_watched_as_h264(
        client, admin_token, media_node, start_camera):
    camera = start_camera(codec="mjpeg", **CAMERA)
    stream_id = await _start(client, camera.url)
    headers = bearer(admin_token)
    config = (await client.get(f"/v2/streams/{stream_id}", headers=headers)).json()[
        "codec_config"]
    assert config["video"]["codec"] == "JPEG" and config["recording"]["codec"] == "H264"
    frames = await _watch(client, admin_token, stream_id, 5)
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 5
    with av.open(io.BytesIO(await _segment(client, headers, stream_id)),
                 format="mpegts") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert list(container.decode(stream))
