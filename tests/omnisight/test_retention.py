"""Retention applies the system storage settings, on a real small disk: the data dir is a
tmpfs of its own (the tests run as root), so that `maxUsage` (% of the disk) can be crossed
with a few MiB of real segment files. Real database, real files, and a real worker for the
scheduled job and its `system_notification`."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from core import notify
from core.clock import utcnow
from core.recordings import RecordingIndex
from core.settings import Settings
from tests.conftest import bearer
from tests.omnisight.conftest import BASE

SEGMENT = 512 * 1024
COUNT = 8


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The data dir on a 16 MiB tmpfs of its own."""
    data = Path(settings_env["VAS_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(data)], check=True)
    try:
        yield settings_env
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


async def write_segments(settings: Settings, ages: list[timedelta]) -> tuple[RecordingIndex,
                                                                            list[Path]]:
    """One real 512 KiB file and index row per age (oldest first when ages decrease)."""
    index = RecordingIndex(settings.media.recordings_dir(settings.server.data_dir))
    stream_id = uuid.uuid4()
    directory = index.directory(stream_id)
    directory.mkdir(parents=True, exist_ok=True)
    files, now = [], utcnow()
    for sequence, age in enumerate(ages):
        path = directory / f"seg_{sequence}.ts"
        path.write_bytes(b"\x47" * SEGMENT)
        start = now - age
        await index.add(stream_id, sequence, path.name, start, start + timedelta(seconds=6), 6.0,
                        SEGMENT, False)
        files.append(path)
    return index, files


def percent_for(root: Path, keep_bytes_removed: int) -> int:
    """A maxUsage that the disk exceeds by about `keep_bytes_removed` bytes."""
    total, used, _ = shutil.disk_usage(root)
    return int(100 * (used - keep_bytes_removed) / total)


async def test_the_scheduled_job_applies_the_settings_and_warns_when_full(
    client, admin_user, settings: Settings, worker, app, settings_env,
):
    from api.state import services_of

    headers = bearer(admin_user["token"])
    listener = redis.Redis.from_url(settings_env["REDIS_URL"])
    channel = listener.pubsub()
    channel.subscribe(notify.channel(settings_env["VAS_REDIS_NAMESPACE"]))
    try:
        ages = [timedelta(minutes=10 * (COUNT - n)) for n in range(COUNT)]
        index, files = await write_segments(settings, ages)
        # autoCleanup off: nothing goes, and the disk above maxUsage is announced.
        changed = await client.put(f"{BASE}/system/settings", headers=headers, json={
            "storage": {"maxUsage": 1, "autoCleanup": False}})
        assert changed.status_code == 200, changed.text
        await services_of(app).jobs.purge_recordings()
        warning = await _next_notification(channel)
        assert warning["data"]["level"] == "warning"
        assert "above 1%" in warning["data"]["message"]
        assert all(path.exists() for path in files)

        # autoCleanup on, maxUsage just below the usage: the job removes the oldest.
        max_usage = percent_for(index.root, 2 * SEGMENT)
        changed = await client.put(f"{BASE}/system/settings", headers=headers, json={
            "storage": {"maxUsage": max_usage, "autoCleanup": True}})
        assert changed.status_code == 200, changed.text
        await services_of(app).jobs.purge_recordings()
        deadline = time.monotonic() + 30
        while files[0].exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        gone = [not path.exists() for path in files]
        removed = sum(gone)
        assert 1 <= removed < COUNT and gone == [True] * removed + [False] * (COUNT - removed)
    finally:
        channel.close()
        listener.close()


async def _next_notification(channel: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await asyncio.to_thread(channel.get_message, True, 1.0)
        if message is not None and message["type"] == "message":
            decoded = json.loads(message["data"])
            if decoded["type"] == "system_notification":
                return dict(decoded)
    raise AssertionError("no system_notification")
