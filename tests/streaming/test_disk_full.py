"""Fault drill: the recordings volume fills up under a LIVE stream (a small tmpfs of the
test's own mounted as the recordings dir). Recording stops cleanly: one `system_notification`
(error), the stream's health says why, the live stream goes on, no partial or corrupt
segment is indexed. When space returns recording resumes by itself (an `info` notification,
healthy again, new segments indexed)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import redis

from core.notify import channel
from core.tables import HlsSegment
from tests.conftest import bearer
from tests.drill_viewers import live_stream
from tests.vas_fixtures import until

pytestmark = pytest.mark.slow

VOLUME = "24m"


@pytest.fixture
def recordings_volume(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of VOLUME at <data dir>/recordings/hot (we run as root, as the CI does)."""
    mount = tmp_path / "data" / "recordings" / "hot"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME}", "tmpfs", str(mount)],
                   check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def settings_env(settings_env: dict[str, str], recordings_volume: Path) -> dict[str, str]:
    return settings_env  # the volume is mounted before any process of the test starts


def _fill(volume: Path) -> Path:
    filler = volume / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the database is not on the volume
async def test_full_disk_stops_recording_cleanly_and_it_resumes(
    client: httpx.AsyncClient, admin_token: str, media_node: Any, start_camera: Any,
    recordings_volume: Path, settings_env: dict[str, str],
) -> None:
    headers = bearer(admin_token)
    _, stream_id = await live_stream(client, start_camera)
    health = f"/v2/streams/{stream_id}/health"
    directory = recordings_volume / stream_id

    async def indexed() -> list[dict[str, Any]]:
        return list(await HlsSegment.select().where(HlsSegment.stream_id == uuid.UUID(stream_id)))

    await until(indexed, "first segment", 30)
    notices = redis.Redis.from_url(settings_env["REDIS_URL"]).pubsub()
    notices.subscribe(channel(settings_env["VAS_REDIS_NAMESPACE"]))

    def notifications(level: str) -> list[str]:
        found = []
        while (message := notices.get_message(timeout=0.01)) is not None:
            if message["type"] == "message":
                body = json.loads(message["data"])
                if body["type"] == "system_notification":
                    found.append((body["data"]["level"], body["data"]["message"]))
        notifications.seen += found  # type: ignore[attr-defined]
        return [m for lvl, m in notifications.seen if lvl == level]  # type: ignore[attr-defined]

    notifications.seen = []  # type: ignore[attr-defined]
    filler = _fill(recordings_volume)
    full_at = time.monotonic()

    async def reported() -> dict[str, Any] | None:
        body = (await client.get(health, headers=headers)).json()
        return body if body["last_error"] and "RECORDING_FAILED" in body["last_error"] else None

    unhealthy = await until(reported, "the health error", 30)
    assert unhealthy["state"] == "LIVE" and not unhealthy["is_healthy"], unhealthy
    assert "No space left" in unhealthy["last_error"]

    async def error_sent() -> list[str]:
        return notifications("error")

    errors = await until(error_sent, "a system_notification", 10)
    assert stream_id in errors[0] and "No space left" in errors[0]
    during = len(await indexed())
    await until(lambda: _later(full_at + 8), "recording stopped a while", 15)
    assert len(await indexed()) == during  # nothing (partial) indexed while full
    assert len(notifications("error")) == 1  # said once, not for every attempt

    # The index is intact: every row's file is whole and decodes; no stray partial file.
    rows = await indexed()
    for row in rows:
        path = directory / row["filename"]
        assert path.stat().st_size == row["size"], row
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0
    stray = {p.name for p in directory.iterdir()} - {r["filename"] for r in rows}
    assert len(stray) <= 1, stray  # at most the segment being written when space returns

    filler.unlink()
    resumed_at = time.monotonic()

    async def recording_again() -> bool:
        return len(await indexed()) > during

    await until(recording_again, "recording after space returned", 30)

    async def healthy() -> bool:
        return bool((await client.get(health, headers=headers)).json()["is_healthy"])

    await until(healthy, "healthy again", 20)

    async def info_sent() -> list[str]:
        return notifications("info")

    assert stream_id in (await until(info_sent, "the resumed notification", 10))[0]
    print(f"disk full: recording stopped and reported; resumed "
          f"{time.monotonic() - resumed_at:.1f} s after space returned")
    notices.close()


async def _later(moment: float) -> bool:
    return time.monotonic() >= moment
