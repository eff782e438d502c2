"""A recording's segments: files of `segmentDuration` cut on keyframes, remuxed into MP4 or
MPEG-TS from the recorder, each with a thumbnail; deleting keeps a bookmark of that range."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest

from core.tables import HlsSegment, RecordingSegment
from tests.conftest import bearer
from tests.omnisight.conftest import BASE
from tests.streaming.conftest import FAST
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, **FAST}


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


async def _recorded_until(stream_id: uuid.UUID, moment: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        row = await HlsSegment.select(HlsSegment.end_at).where(
            HlsSegment.stream_id == stream_id).order_by(HlsSegment.end_at,
                                                        ascending=False).first()
        if row is not None and row["end_at"] >= moment:
            return
        assert time.monotonic() < deadline, "the recorder did not get there"
        await asyncio.sleep(0.5)


def _decode(path: Path) -> tuple[int, int, int, float]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    seconds = (frames[-1].time - frames[0].time) + 1 / 15 if len(frames) > 1 else 0.0
    return len(frames), frames[0].width, frames[0].height, seconds


async def test_segments_of_both_formats_with_thumbnails(client, admin_token, settings,
                                                        media_node, worker, start_camera):
    headers = bearer(admin_token)
    camera = start_camera(fps=15, gop=15)  # a keyframe every second
    camera_id = await add_device(client, camera.url)
    ids = {}
    for fmt in ("mp4", "ts"):  # two sessions over the same stream at once
        started = await client.post(f"{BASE}/cameras/{camera_id}/recordings/start",
                                    headers=headers, timeout=40,
                                    json={"settings": {"segmentDuration": 10, "format": fmt}})
        assert started.status_code == 201, started.text
        ids[fmt] = started.json()["id"]
    first = (await client.get(f"{BASE}/recordings/{ids['mp4']}", headers=headers)).json()
    begin = datetime.fromisoformat(first["startTime"].replace("Z", "+00:00"))
    streams = await client.get("/v2/streams", headers=headers)
    stream_id = next(s["id"] for s in streams.json()["streams"]
                     if s["camera_id"] == camera_id and s["state"] == "LIVE")
    await _recorded_until(uuid.UUID(stream_id), begin + timedelta(seconds=35), 70)

    # While recording, the first segments are exported as the recording proceeds.
    await _until(client, headers, f"{BASE}/recordings/{ids['mp4']}/segments",
                 lambda b: b["total"] >= 2, 60)

    bookmark = await client.post(f"/v2/streams/{stream_id}/bookmarks", headers=headers, json={
        "source": "historical", "center_timestamp": (begin + timedelta(seconds=15)).isoformat(),
        "before_seconds": 5, "after_seconds": 5, "label": "same range"})
    assert bookmark.status_code == 201, bookmark.text
    for recording_id in ids.values():
        stopped = await client.post(f"{BASE}/recordings/{recording_id}/stop", headers=headers)
        assert stopped.status_code == 200, stopped.text
    for fmt, recording_id in ids.items():
        detail = await _until(client, headers, f"{BASE}/recordings/{recording_id}",
                              lambda b: b["segmentsComplete"], 90)
        assert detail["status"] == "completed" and 34 <= detail["duration"] <= 60
        listed = (await client.get(f"{BASE}/recordings/{recording_id}/segments",
                                   headers=headers, params={"limit": 100})).json()
        segments = listed["segments"]
        total = detail["duration"]
        assert len(segments) == listed["total"] == detail["segmentCount"]
        assert round(total / 10) <= len(segments) <= round(total / 10) + 1, (total, segments)
        directory = settings.server.data_dir / "recordings" / "sessions" / recording_id
        for index, segment in enumerate(segments):
            assert segment["format"] == fmt and segment["resolution"] == "640x360"
            assert segment["recordingId"] == recording_id
            assert segment["filePath"] == f"/api/v1/media/segments/{segment['id']}"
            assert segment["thumbnailPath"] == f"/api/v1/media/thumbnails/segments/{segment['id']}"
            row = await RecordingSegment.select().where(
                RecordingSegment.id == uuid.UUID(segment["id"])).first()
            path = directory / row["filename"]
            assert path.suffix == f".{fmt}" and path.stat().st_size == segment["fileSize"]
            count, width, height, seconds = _decode(path)
            assert (width, height) == (640, 360)
            if index < len(segments) - 1:
                assert 9.0 <= seconds <= 11.0 and 9.0 <= segment["duration"] <= 11.0, segment
                assert segment["endTime"] == segments[index + 1]["startTime"]
            assert count >= 14 * seconds - 2
            thumb = (directory / row["thumbnail"]).read_bytes()
            assert thumb[:2] == b"\xff\xd8"
        if fmt == "mp4":
            data = (directory / "segment_00001.mp4").read_bytes()
            assert data.index(b"moov") < data.index(b"mdat")

    ready = await _until(client, headers, f"/v2/bookmarks/{bookmark.json()['id']}",
                         lambda b: b["status"] == "ready", 60)
    for recording_id in ids.values():
        deleted = await client.delete(f"{BASE}/recordings/{recording_id}", headers=headers)
        assert deleted.status_code == 200
        directory = settings.server.data_dir / "recordings" / "sessions" / recording_id
        assert not directory.exists()
        assert await RecordingSegment.count().where(
            RecordingSegment.session_id == uuid.UUID(recording_id)) == 0
    kept = await client.get(ready["video_url"], headers=headers)
    assert kept.status_code == 200 and kept.content[4:8] == b"ftyp"
