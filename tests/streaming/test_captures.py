"""Guide §3.6 and §3.7 with a real camera, media node and worker: live and historical
snapshots, live and historical bookmarks, downloads with Range, filters, update, delete,
bad input, and a job that survives a worker being killed."""

from __future__ import annotations

import asyncio
import io
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import av
import pytest

from core.tables import Bookmark, HlsSegment
from tests.camera import read_frame_timestamp
from tests.conftest import bearer
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow


async def _live(client, start_camera, **profile) -> str:
    camera = start_camera(**{"fps": 15, "gop": 15, **profile})
    device_id = await add_device(client, camera.url)
    answer = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["v2_stream_id"])


async def _until(client, headers, path: str, status: str, seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = (await client.get(path, headers=headers)).json()
        if body["status"] != "processing":
            assert body["status"] == status, body.get("error")
            return body
        await asyncio.sleep(0.3)
    raise AssertionError(f"{path} still processing after {seconds} s")


async def _first_segment(stream_id: str, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = await HlsSegment.select().where(
            HlsSegment.stream_id == uuid.UUID(stream_id)).order_by(HlsSegment.sequence).first()
        if row:
            return row
        await asyncio.sleep(0.3)
    raise AssertionError("no segment recorded")


def _decode_jpeg(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data), format="image2pipe") as container:
        return next(container.decode(video=0))


async def test_live_and_historical_snapshots(client, admin_token, media_node, worker, start_camera,
                                             settings):
    stream_id = await _live(client, start_camera, overlay_time=True)
    headers = bearer(admin_token)
    created = await client.post(f"/v2/streams/{stream_id}/snapshots", headers=headers, json={
        "source": "live", "created_by": "ruth-ai",
        "metadata": {"detection_type": "person", "confidence": 0.95}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert {"id", "stream_id", "timestamp", "source", "created_by", "format", "file_size",
            "width", "height", "image_url", "metadata", "created_at"} <= set(body)
    assert body["format"] == "jpg" and body["image_url"] == f"/v2/snapshots/{body['id']}/image"
    ready = await _until(client, headers, f"/v2/snapshots/{body['id']}", "ready", 15)
    assert (ready["width"], ready["height"]) == (640, 360) and ready["file_size"] > 0
    image = await client.get(ready["image_url"], headers=headers)
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert len(image.content) == ready["file_size"]
    frame = _decode_jpeg(image.content)
    assert (frame.width, frame.height) == (640, 360)
    shown = read_frame_timestamp(frame)
    requested = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00")).timestamp()
    assert shown is not None and abs(shown - requested) < 1.5, (shown, requested)

    segment = await _first_segment(stream_id)
    moment = segment["start_at"] + timedelta(seconds=2.5)
    historical = await client.post(f"/v2/streams/{stream_id}/snapshots", headers=headers, json={
        "source": "historical", "timestamp": moment.isoformat(), "created_by": "ruth-ai"})
    assert historical.status_code == 201, historical.text
    done = await _until(client, headers, f"/v2/snapshots/{historical.json()['id']}", "ready", 20)
    picture = _decode_jpeg((await client.get(done["image_url"], headers=headers)).content)
    stamp = read_frame_timestamp(picture)
    # The index is in VAS's clock (arrival); the picture's own clock is earlier by the
    # camera's encode-and-send latency (~0.1 s here) plus up to a frame (67 ms at 15 fps).
    assert stamp is not None and -0.1 < moment.timestamp() - stamp < 0.35, (stamp, moment)

    listed = (await client.get("/v2/snapshots", headers=headers, params={
        "stream_id": stream_id, "created_by": "ruth-ai", "source": "historical"})).json()
    assert [s["id"] for s in listed["snapshots"]] == [done["id"]]
    assert listed["pagination"] == {"total": 1, "limit": 50, "offset": 0}
    assert (await client.get("/v2/snapshots", headers=headers, params={
        "after": "2099-01-01T00:00:00Z"})).json()["snapshots"] == []

    assert (await client.delete(f"/v2/snapshots/{done['id']}", headers=headers)).status_code == 204
    assert (await client.get(f"/v2/snapshots/{done['id']}", headers=headers)).status_code == 404
    assert not (settings.server.data_dir / "snapshots" / f"{done['id']}.jpg").exists()
    assert (settings.server.data_dir / "snapshots" / f"{ready['id']}.jpg").exists()


async def test_snapshot_bad_input(client, admin_token, media_node, start_camera):
    stream_id = await _live(client, start_camera)
    headers = bearer(admin_token)
    for body in ({"source": "historical"},
                 {"source": "historical", "timestamp": "2001-01-01T00:00:00Z"},
                 {"source": "historical", "timestamp": "2999-01-01T00:00:00Z"},
                 {"source": "live", "timestamp": "2026-01-01T00:00:00Z"},
                 {"source": "memory"}, {"metadata": "x"}, {"created_by": "a\u0000b"},
                 {"timestamp": "yesterday", "source": "historical"}):
        response = await client.post(f"/v2/streams/{stream_id}/snapshots", json=body,
                                     headers=headers)
        assert response.status_code == 400, (body, response.text)
        assert isinstance(response.json()["detail"], str)
    assert (await client.post(f"/v2/streams/{uuid.uuid4()}/snapshots", json={},
                              headers=headers)).status_code == 404
    assert (await client.get("/v2/snapshots/nope", headers=headers)).status_code == 400
    assert (await client.get("/v2/snapshots", params={"limit": 101},
                             headers=headers)).status_code == 400


async def test_live_and_historical_bookmarks(client, admin_token, media_node, worker,
                                             start_camera, settings):
    stream_id = await _live(client, start_camera)
    headers = bearer(admin_token)
    await _first_segment(stream_id)  # the 5 s before the bookmark are recorded
    created = await client.post(f"/v2/streams/{stream_id}/bookmarks", headers=headers, json={
        "source": "live", "label": "Person detected at entrance", "event_type": "person_detected",
        "confidence": 0.92, "before_seconds": 5, "after_seconds": 10,
        "tags": ["security", "entrance"], "created_by": "ruth-ai",
        "metadata": {"bounding_box": {"x": 100, "y": 150, "w": 200, "h": 400}}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "processing" and body["video_url"] is None
    assert body["duration_seconds"] == 15.0 and body["tags"] == ["security", "entrance"]

    ready = await _until(client, headers, f"/v2/bookmarks/{body['id']}", "ready", 45)
    video = await client.get(ready["video_url"], headers=headers)
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    data = video.content
    assert data.index(b"moov") < data.index(b"mdat"), "not faststart"
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(video=0))
        duration = float(stream.duration * stream.time_base) if stream.duration else len(frames) / 15
    assert 14.0 <= duration <= 16.0, duration
    assert frames and (frames[0].width, frames[0].height) == (640, 360)
    thumb = await client.get(ready["thumbnail_url"], headers=headers)
    assert thumb.headers["content-type"] == "image/jpeg"
    assert _decode_jpeg(thumb.content).width == 640

    part = await client.get(ready["video_url"], headers={**headers, "Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == data[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(data)}"
    tail = await client.get(ready["video_url"], headers={**headers, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    beyond = await client.get(ready["video_url"],
                              headers={**headers, "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416

    # The newest recorded segment: later than the live bookmark's start, wholly on disk.
    segment = await HlsSegment.select().where(
        HlsSegment.stream_id == uuid.UUID(stream_id)).order_by(
        HlsSegment.sequence, ascending=False).first()
    assert segment["duration"] >= 5, segment
    center = segment["start_at"] + timedelta(seconds=3)
    historical = await client.post(f"/v2/streams/{stream_id}/bookmarks", headers=headers, json={
        "source": "historical", "center_timestamp": center.isoformat(), "before_seconds": 2,
        "after_seconds": 2, "label": "Reviewed incident", "event_type": "anomaly"})
    assert historical.status_code == 201, historical.text
    past = await _until(client, headers, f"/v2/bookmarks/{historical.json()['id']}", "ready", 30)
    with av.open(io.BytesIO((await client.get(past["video_url"], headers=headers)).content)) as c:
        seconds = len(list(c.decode(video=0))) / 15
    assert 3.0 <= seconds <= 5.5, seconds

    listed = (await client.get("/v2/bookmarks", headers=headers, params={
        "event_type": "person_detected", "created_by": "ruth-ai", "stream_id": stream_id})).json()
    assert [b["id"] for b in listed["bookmarks"]] == [body["id"]]
    by_source = (await client.get("/v2/bookmarks", headers=headers,
                                  params={"source": "historical"})).json()
    assert [b["id"] for b in by_source["bookmarks"]] == [past["id"]]
    earlier = (await client.get("/v2/bookmarks", headers=headers, params={
        "start_before": past["start_time"]})).json()
    assert [b["id"] for b in earlier["bookmarks"]] == [body["id"]]
    live_start = datetime.fromisoformat(body["start_time"].replace("Z", "+00:00"))
    later = (await client.get("/v2/bookmarks", headers=headers, params={
        "start_after": (live_start + timedelta(milliseconds=1)).isoformat()})).json()
    assert [b["id"] for b in later["bookmarks"]] == [past["id"]]

    updated = await client.put(f"/v2/bookmarks/{body['id']}", headers=headers, json={
        "label": "Updated: Confirmed delivery person", "event_type": "delivery",
        "tags": ["delivery", "verified"]})
    assert updated.status_code == 200
    assert updated.json()["event_type"] == "delivery" and updated.json()["confidence"] == 0.92
    assert (await client.put(f"/v2/bookmarks/{body['id']}", headers=headers,
                             json={})).status_code == 400

    clip = settings.server.data_dir / "bookmarks" / f"{body['id']}.mp4"
    assert clip.exists() and clip.with_suffix(".jpg").exists()
    assert (await client.delete(f"/v2/bookmarks/{body['id']}", headers=headers)).status_code == 204
    assert (await client.get(ready["video_url"], headers=headers)).status_code == 404
    assert not clip.exists() and not clip.with_suffix(".jpg").exists()


async def test_bookmark_bad_input(client, admin_token, media_node, start_camera):
    stream_id = await _live(client, start_camera)
    headers = bearer(admin_token)
    now = datetime.now(UTC)
    for body in ({"before_seconds": 301}, {"after_seconds": -1},
                 {"before_seconds": 0, "after_seconds": 0},
                 {"source": "historical"},
                 {"source": "historical", "center_timestamp": "2001-01-01T00:00:00Z"},
                 {"source": "historical", "center_timestamp": now.isoformat()},
                 {"source": "live", "center_timestamp": now.isoformat()},
                 {"confidence": 2}, {"tags": "x"}, {"tags": ["a\u0000"]}, {"label": "x" * 501},
                 {"metadata": [1]}, {"source": "replay"}):
        response = await client.post(f"/v2/streams/{stream_id}/bookmarks", json=body,
                                     headers=headers)
        assert response.status_code == 400, (body, response.text)


async def test_export_survives_a_killed_worker(client, admin_token, media_node, start_process,
                                              start_camera, settings_env):
    settings_env["VAS_JOB_STALE_MS"] = "3000"
    first = start_process("worker", "serving queues")
    stream_id = await _live(client, start_camera)
    headers = bearer(admin_token)
    await _first_segment(stream_id)  # the 2 s before the bookmark are recorded
    created = (await client.post(f"/v2/streams/{stream_id}/bookmarks", headers=headers, json={
        "source": "live", "before_seconds": 2, "after_seconds": 4})).json()
    path = f"/v2/bookmarks/{created['id']}"
    # The first worker took the job: it shows life on the row while it waits for the clip's
    # end to be recorded. Only then is it killed.
    deadline = time.monotonic() + 20
    while (await client.get(path, headers=headers)).json()["updated_at"] == created["updated_at"]:
        assert time.monotonic() < deadline, "no worker took the export"
        await asyncio.sleep(0.1)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    start_process("worker", "serving queues")
    ready = await _until(client, headers, path, "ready", 60)
    row = await Bookmark.select(Bookmark.attempts).where(
        Bookmark.id == uuid.UUID(created["id"])).first()
    assert row["attempts"] >= 1, "the clip was not made by a second run of the job"
    video = await client.get(ready["video_url"], headers=headers)
    with av.open(io.BytesIO(video.content)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
    # 6 s at 15 fps, cut on the recording's frames: a whole clip, not a fragment.
    assert 15 * 5 <= frames <= 15 * 7.5, frames
