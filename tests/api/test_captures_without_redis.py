"""Snapshots and bookmarks asked for while Redis is away: 503 in the guide's shape, no row
left behind, and the same request succeeds once Redis is back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from core.clock import utcnow
from core.stream_states import StreamState
from core.streams import StreamService
from core.tables import Bookmark, Snapshot
from tests.conftest import bearer
from tests.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it stops and starts again."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_env(settings_env: dict[str, str], redis_server: RedisServer) -> dict[str, str]:
    return {**settings_env, "REDIS_URL": redis_server.url}


async def _live_stream(client: httpx.AsyncClient, headers: dict[str, str]) -> uuid.UUID:
    device = await client.post("/api/v1/devices", json={"name": "cam",
                                                         "rtsp_url": "rtsp://192.0.2.1/s"},
                               headers=headers)
    service = StreamService()
    row, _ = await service.create(uuid.UUID(device.json()["id"]))
    for state in (StreamState.READY, StreamState.LIVE):
        row = await service.transition(row.id, state)
    return row.id


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert detail["error_code"] == "MEDIASOUP_UNAVAILABLE"
    assert detail["message"] == "The job queue is not reachable"


async def test_capture_requests_while_redis_is_down_are_503_and_leave_no_row(
    app, client: httpx.AsyncClient, admin_token: str, redis_server: RedisServer
) -> None:
    headers = bearer(admin_token)
    stream_id = await _live_stream(client, headers)
    services = app.state.services
    now = utcnow()
    segment_start = now - timedelta(seconds=20)
    await services.recordings.add(stream_id, 0, "seg_0.ts", segment_start,
                                  segment_start + timedelta(seconds=2), 2.0, 1000, False)
    snapshot_body = {"source": "historical",
                     "timestamp": (segment_start + timedelta(seconds=1)).isoformat()}
    bookmark_body = {"source": "live", "label": "door", "before_seconds": 2,
                     "after_seconds": 2}

    redis_server.stop()
    _assert_unavailable(await client.post(f"/v2/streams/{stream_id}/snapshots",
                                          json=snapshot_body, headers=headers))
    _assert_unavailable(await client.post(f"/v2/streams/{stream_id}/bookmarks",
                                          json=bookmark_body, headers=headers))
    assert await Snapshot.count() == 0
    assert await Bookmark.count() == 0

    redis_server.start()  # same port: the API's clients reconnect by themselves
    created = await client.post(f"/v2/streams/{stream_id}/snapshots", json=snapshot_body,
                                headers=headers)
    assert created.status_code == 201, created.text
    marked = await client.post(f"/v2/streams/{stream_id}/bookmarks", json=bookmark_body,
                               headers=headers)
    assert marked.status_code == 201, marked.text
    assert await Snapshot.count() == 1 and await Bookmark.count() == 1
    queued = [key for key in redis_server.all_keys() if key.endswith(".default")
              or ":default" in key]
    assert queued, "the jobs are queued once Redis is back"
