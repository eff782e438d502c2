"""Retention over the recorder's segments and recordings' segments alike: by age
(`storage.retentionDays`, through the worker's retention job) and by disk use (`maxUsage`,
oldest first, whichever kind)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from api.state import services_of
from core.clock import utcnow
from core.recording_retention import RecordingRetention
from core.recordings import RecordingIndex
from core.tables import HlsSegment, RecordingSegment, RecordingSession
from tests.conftest import bearer
from tests.omnisight.conftest import BASE


async def _hls(index: RecordingIndex, stream_id: uuid.UUID, sequence: int,
               start: datetime) -> Path:
    path = index.directory(stream_id) / f"seg_{sequence}.ts"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x47" * 1880)
    await index.add(stream_id, sequence, path.name, start, start + timedelta(seconds=6), 6.0,
                    1880, False)
    return path


async def _session(root: Path, start: datetime, count: int) -> tuple[uuid.UUID, list[Path]]:
    """A finished manual recording of `count` 10 s segments from `start`."""
    session_id = uuid.uuid4()
    now = utcnow()
    await RecordingSession.insert(RecordingSession(
        id=session_id, camera_id=uuid.uuid4(), stream_id=uuid.uuid4(), kind="manual",
        status="completed", start_at=start, end_at=start + timedelta(seconds=10 * count),
        segment_duration=10, format="mp4", exported_until=start + timedelta(seconds=10 * count),
        created_at=now, updated_at=now))
    paths = []
    for n in range(count):
        path = root / str(session_id) / f"segment_{n + 1:05d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
        (path.with_suffix(".jpg")).write_bytes(b"\xff\xd8")
        begin = start + timedelta(seconds=10 * n)
        await RecordingSegment.insert(RecordingSegment(
            id=uuid.uuid4(), session_id=session_id, sequence=n + 1, filename=path.name,
            thumbnail=path.with_suffix(".jpg").name, start_at=begin,
            end_at=begin + timedelta(seconds=10), duration=10.0, size=1000, format="mp4",
            created_at=now))
        paths.append(path)
    return session_id, paths


async def test_retention_by_days_through_the_worker(client, admin_token, settings, worker, app):
    headers = bearer(admin_token)
    changed = await client.put(f"{BASE}/system/settings", headers=headers,
                               json={"storage": {"retentionDays": 2}})
    assert changed.status_code == 200, changed.text
    data_dir = settings.server.data_dir
    index = RecordingIndex(settings.media.recordings_dir(data_dir))
    root = data_dir / "recordings" / "sessions"
    now = utcnow()
    stream_id = uuid.uuid4()
    old_hls = await _hls(index, stream_id, 0, now - timedelta(days=3))
    new_hls = await _hls(index, stream_id, 1, now - timedelta(days=1))
    old_id, old_files = await _session(root, now - timedelta(days=3), 2)
    new_id, new_files = await _session(root, now - timedelta(days=1), 2)

    await services_of(app).jobs.purge_recordings()
    for _ in range(300):  # the worker polls its queue
        if not old_hls.exists() and not old_files[-1].exists():
            break
        await asyncio.sleep(0.1)
    assert not old_hls.exists() and new_hls.exists()
    assert not any(p.exists() for p in old_files) and all(p.exists() for p in new_files)
    assert await HlsSegment.count().where(HlsSegment.stream_id == stream_id) == 1
    assert await RecordingSegment.count().where(RecordingSegment.session_id == old_id) == 0
    assert await RecordingSegment.count().where(RecordingSegment.session_id == new_id) == 2
    for _ in range(100):  # the recording left empty goes with its last segment
        if not await RecordingSession.exists().where(RecordingSession.id == old_id):
            break
        await asyncio.sleep(0.1)
    assert not await RecordingSession.exists().where(RecordingSession.id == old_id)
    assert not (root / str(old_id)).exists()


async def test_retention_by_disk_use_removes_the_oldest_of_either_kind(client, settings):
    data_dir = settings.server.data_dir
    index = RecordingIndex(settings.media.recordings_dir(data_dir))
    root = data_dir / "recordings" / "sessions"
    now = utcnow()
    stream_id = uuid.uuid4()
    # Interleaved in time: hls 0 (-50 min), session A (-40, -39 min), hls 1 (-30), B (-20,
    # -19), hls 2 (-10): the limit lets two of the seven stay.
    hls0 = await _hls(index, stream_id, 0, now - timedelta(minutes=50))
    a_id, a_files = await _session(root, now - timedelta(minutes=40), 2)
    hls1 = await _hls(index, stream_id, 1, now - timedelta(minutes=30))
    b_id, b_files = await _session(root, now - timedelta(minutes=20), 2)
    hls2 = await _hls(index, stream_id, 2, now - timedelta(minutes=10))
    everything = [hls0, *a_files, hls1, *b_files, hls2]

    def usage() -> float:  # "disk use": the share of these files still present
        return 100.0 * sum(p.exists() for p in everything) / len(everything)

    result = await RecordingRetention(index, root).apply(now - timedelta(days=30), 30.0, usage)
    assert result.by_usage >= 5
    assert [p.exists() for p in everything] == [False, False, False, False, False, True, True]
    assert not await RecordingSession.exists().where(RecordingSession.id == a_id)
    assert await RecordingSession.exists().where(RecordingSession.id == b_id)
    assert await RecordingSegment.count().where(RecordingSegment.session_id == b_id) == 1
