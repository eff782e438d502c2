"""OmniSight media: segment downloads with Range, thumbnails, bad ids, the live snapshot,
the live HLS playlist played by PyAV through a real `vas api` process."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Callable
from typing import Any

import av
import pytest

from tests.conftest import bearer
from tests.e2e.processes import VasProcess, free_port
from tests.omnisight.conftest import BASE, error_of
from tests.streaming.conftest import FAST
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, **FAST}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    assert data[:2] == b"\xff\xd8"
    with av.open(io.BytesIO(data), format="image2pipe") as container:
        frame = next(container.decode(video=0))
    return frame.width, frame.height


async def _until(client: Any, headers: dict[str, str], path: str, check: Any,
                 seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        if check(body):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.5)


async def test_segment_files_thumbnails_and_bad_ids(client, admin_token, media_node, worker,
                                                    start_camera):
    headers = bearer(admin_token)
    camera = start_camera(fps=15, gop=15)
    camera_id = await add_device(client, camera.url)
    started = await client.post(f"{BASE}/cameras/{camera_id}/recordings/start", headers=headers,
                                timeout=40, json={"settings": {"segmentDuration": 10}})
    assert started.status_code == 201, started.text
    recording_id = started.json()["id"]
    listed = await _until(client, headers, f"{BASE}/recordings/{recording_id}/segments",
                          lambda b: b["total"] >= 1, 90)
    segment = listed["segments"][0]
    assert segment["format"] == "mp4"  # the system default

    whole = await client.get(segment["filePath"], headers=headers)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert len(whole.content) == segment["fileSize"]
    with av.open(io.BytesIO(whole.content)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (640, 360)
    part = await client.get(segment["filePath"], headers={**headers, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    thumb = await client.get(segment["thumbnailPath"], headers=headers)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert _jpeg_size(thumb.content) == (640, 360)
    listing = (await client.get(f"{BASE}/recordings", headers=headers,
                                params={"cameraId": camera_id, "status": "recording"})).json()
    manual = next(r for r in listing["recordings"] if r["id"] == recording_id)
    assert manual["thumbnailPath"] == segment["thumbnailPath"]

    for path in (f"/media/segments/{uuid.uuid4()}", "/media/segments/nope",
                 f"/media/thumbnails/segments/{uuid.uuid4()}",
                 f"/media/thumbnails/events/{uuid.uuid4()}", "/media/thumbnails/events/x"):
        missing = await client.get(f"{BASE}{path}", headers=headers)
        assert missing.status_code == 404, path
        assert error_of(missing)["code"] == "RESOURCE_NOT_FOUND"
    assert (await client.get(segment["filePath"])).status_code == 401

    snapshot = await client.get(f"{BASE}/cameras/{camera_id}/snapshot", headers=headers)
    assert snapshot.status_code == 200, snapshot.text
    assert snapshot.headers["content-type"] == "image/jpeg"
    assert _jpeg_size(snapshot.content) == (640, 360)

    idle = await add_device(client, camera.url)
    for path in (f"/cameras/{idle}/snapshot", f"/cameras/{idle}/live/hls/index.m3u8"):
        refused = await client.get(f"{BASE}{path}", headers=headers)
        assert refused.status_code == 409, refused.text
        assert error_of(refused)["code"] == "CONFLICT"
    unknown = await client.get(f"{BASE}/cameras/{uuid.uuid4()}/snapshot", headers=headers)
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "RESOURCE_NOT_FOUND"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_live_hls_plays_with_pyav_through_a_real_api(client, admin_token, media_node,
                                                          start_camera,
                                                          start_process: Callable[..., VasProcess]):
    """PyAV needs a real HTTP server; the playlist's relative segment URIs take the same
    Authorization header (one backend: nothing here differs between them)."""
    headers = bearer(admin_token)
    camera = start_camera(fps=15, gop=15)
    camera_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{camera_id}/start-stream", timeout=40,
                                headers=headers)
    assert started.status_code == 200, started.text
    path = f"{BASE}/cameras/{camera_id}/live/hls/index.m3u8"
    playlist = await _until_text(client, headers, path)
    assert playlist.startswith("#EXTM3U") and "seg_" in playlist
    assert "#EXT-X-ENDLIST" not in playlist

    port = free_port()
    start_process("api", "Application startup complete", VAS_PORT=str(port))
    url = f"http://127.0.0.1:{port}{path}"
    options = {"headers": f"Authorization: Bearer {admin_token}\r\n"}
    frames = await asyncio.to_thread(_decode_some, url, options, 30)
    assert frames and all((f.width, f.height) == (640, 360) for f in frames)


async def _until_text(client: Any, headers: dict[str, str], path: str) -> str:
    deadline = time.monotonic() + 40
    while True:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        if "seg_" in response.text:
            return response.text
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.5)


def _decode_some(url: str, options: dict[str, str], count: int) -> list[Any]:
    frames = []
    with av.open(url, options=options, timeout=20) as container:
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) >= count:
                break
    return frames
