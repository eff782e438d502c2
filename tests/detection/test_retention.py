"""Retention: the worker's hourly job removes old events and their thumbnails with the
recordings: by age (VAS_HLS_RETENTION_HOURS, 7 days by default), and per camera with the
segments the disk-use rule (`storage.maxUsage`) removed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from api.state import services_of
from core.clock import utcnow
from core.errors import NotFound
from core.events import EventService
from core.recordings import RecordingIndex
from core.streams import StreamService
from core.tables import RecordingSegment, RecordingSession
from tests.conftest import bearer
from tests.omnisight.conftest import BASE
from tests.omnisight.test_recording_retention import _hls

pytestmark = pytest.mark.slow


async def test_retention_removes_old_events_and_thumbnails(client, settings, worker, app):
    events = EventService(settings.server.data_dir)
    camera, now = uuid.uuid4(), utcnow()
    old, _ = await events.record_detection(camera, None, "person", now - timedelta(days=8),
                                           0.7, [], (640, 360), b"\xff\xd8old", 10)
    new, _ = await events.record_detection(camera, None, "person", now - timedelta(hours=1),
                                           0.7, [], (640, 360), b"\xff\xd8new", 10)
    await services_of(app).jobs.purge_recordings()
    for _ in range(300):  # the worker polls its queue; allow for a loaded machine
        if not events.thumbnail_path(old.id).exists():  # removed after the row
            break
        await asyncio.sleep(0.1)
    assert not events.thumbnail_path(old.id).exists()
    with pytest.raises(NotFound):
        await events.get(old.id)
    assert (await events.get(new.id)).id == new.id
    assert events.thumbnail_path(new.id).read_bytes() == b"\xff\xd8new"


async def test_the_disk_use_rule_takes_each_cameras_events_older_than_what_it_removed(
    client, admin_token, settings, worker, app
):
    """`maxUsage` 1 %: the disk is fuller than that, so the retention job removes every
    segment; each camera's events older than the newest segment removed of that camera go
    (with their thumbnails), newer ones and those of a camera that lost nothing stay."""
    headers = bearer(admin_token)
    changed = await client.put(f"{BASE}/system/settings", headers=headers,
                               json={"storage": {"maxUsage": 1}})
    assert changed.status_code == 200, changed.text
    data_dir = settings.server.data_dir
    index = RecordingIndex(settings.media.recordings_dir(data_dir))
    events = EventService(data_dir)
    now = utcnow()
    cameras = []
    for name in ("continuous", "manual", "nothing recorded"):
        made = await client.post(f"{BASE}/cameras", headers=headers,
                                 json={"name": name, "rtspUrl": "rtsp://127.0.0.1:9/x"})
        cameras.append(uuid.UUID(made.json()["id"]))
    continuous, manual, unrecorded = cameras
    # Camera 1: its stream's recorder segments, the newest ending at -40 min + 6 s.
    stream, _ = await StreamService().create(continuous)
    files = [await _hls(index, stream.id, n, now - timedelta(minutes=minutes))
             for n, minutes in enumerate((50, 40))]
    # Camera 2: a manual recording of two 10 s segments from -30 min (ends -29 min 40 s).
    session_id = uuid.uuid4()
    await RecordingSession.insert(RecordingSession(
        id=session_id, camera_id=manual, stream_id=uuid.uuid4(), kind="manual",
        status="completed", start_at=now - timedelta(minutes=30),
        end_at=now - timedelta(minutes=29, seconds=40), segment_duration=10, format="mp4",
        exported_until=now - timedelta(minutes=29, seconds=40), created_at=now,
        updated_at=now))
    for n in range(2):
        path = data_dir / "recordings" / "sessions" / str(session_id) / f"segment_{n + 1}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
        files.append(path)
        begin = now - timedelta(minutes=30) + timedelta(seconds=10 * n)
        await RecordingSegment.insert(RecordingSegment(
            id=uuid.uuid4(), session_id=session_id, sequence=n + 1, filename=path.name,
            thumbnail=None, start_at=begin, end_at=begin + timedelta(seconds=10),
            duration=10.0, size=1000, format="mp4", created_at=now))

    async def event(camera: uuid.UUID, minutes_ago: float) -> uuid.UUID:
        made, _ = await events.record_detection(
            camera, None, "motion", now - timedelta(minutes=minutes_ago), 1.0, [], (640, 360),
            b"\xff\xd8" + camera.bytes, 10)
        return made.id

    gone = [await event(continuous, 45), await event(continuous, 40.5),
            await event(manual, 35), await event(manual, 29.8)]
    kept = [await event(continuous, 5), await event(manual, 20),
            await event(unrecorded, 60)]

    await services_of(app).jobs.purge_recordings()
    for _ in range(300):  # the worker polls its queue
        if not any(events.thumbnail_path(ident).exists() for ident in gone):
            break
        await asyncio.sleep(0.1)
    assert not any(path.exists() for path in files)  # every segment went (disk > 1 %)
    for ident in gone:
        assert not events.thumbnail_path(ident).exists()
        with pytest.raises(NotFound):
            await events.get(ident)
    for ident in kept:
        assert (await events.get(ident)).thumbnail and events.thumbnail_path(ident).is_file()
