"""VAS_MAX_JOBS_PER_CLIENT: snapshot and bookmark jobs in progress per caller, counted in the
real Redis and database; 429 with Retry-After beyond, and the seats come back when a real
worker ends the jobs (here they fail: the recorded segment has no file)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from core.clock import utcnow
from core.stream_states import StreamState
from core.streams import StreamService
from core.tables import Bookmark, Snapshot
from tests.conftest import bearer, token_for
from tests.vas_fixtures import until

SCOPES = ["snapshots:write", "snapshots:read", "bookmarks:write", "bookmarks:read"]


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "VAS_MAX_JOBS_PER_CLIENT": "2"}


async def _stream_with_a_segment(app, client: httpx.AsyncClient,
                                 admin: str) -> tuple[uuid.UUID, str]:
    """A LIVE stream (no node: its jobs wait for a worker) with a 2 s segment 20 s ago;
    returns the stream and a moment inside the segment."""
    device = await client.post("/api/v1/devices", json={"name": "cam",
                                                         "rtsp_url": "rtsp://192.0.2.1/s"},
                               headers=bearer(admin))
    service = StreamService()
    row, _ = await service.create(uuid.UUID(device.json()["id"]))
    for state in (StreamState.READY, StreamState.LIVE):
        row = await service.transition(row.id, state)
    start = utcnow() - timedelta(seconds=20)
    await app.state.services.recordings.add(row.id, 0, "seg_0.ts", start,
                                            start + timedelta(seconds=2), 2.0, 1000, False)
    return row.id, (start + timedelta(seconds=1)).isoformat()


async def test_jobs_in_progress_are_bounded_per_client_and_freed_when_they_end(
    app, client: httpx.AsyncClient, admin_token: str, start_process
) -> None:
    stream_id, moment = await _stream_with_a_segment(app, client, admin_token)
    one = bearer(await token_for(client, admin_token, SCOPES))
    other = bearer(await token_for(client, admin_token, SCOPES))
    snapshot = {"source": "historical", "timestamp": moment}
    bookmark = {"source": "historical", "center_timestamp": moment, "before_seconds": 1,
                "after_seconds": 1}
    snapshots, bookmarks = f"/v2/streams/{stream_id}/snapshots", f"/v2/streams/{stream_id}/bookmarks"

    # No worker yet: the jobs stay in progress. A snapshot and a bookmark fill the bound...
    made = await client.post(snapshots, json=snapshot, headers=one)
    assert made.status_code == 201, made.text
    made = await client.post(bookmarks, json=bookmark, headers=one)
    assert made.status_code == 201, made.text
    # ... so a third of either kind is refused, with nothing recorded.
    for path, body in ((snapshots, snapshot), (bookmarks, bookmark)):
        refused = await client.post(path, json=body, headers=one)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "VAS_MAX_JOBS_PER_CLIENT" in refused.json()["detail"]
    assert await Snapshot.count() == 1 and await Bookmark.count() == 1
    # The bound is per client: another one is not affected.
    assert (await client.post(snapshots, json=snapshot, headers=other)).status_code == 201

    # Requests racing for the last seats (a third client): at most the bound is admitted, and
    # a refused one leaves no row (counted once its row exists, and deleted again).
    third = bearer(await token_for(client, admin_token, SCOPES))
    answers = await asyncio.gather(*(client.post(snapshots, json=snapshot, headers=third)
                                     for _ in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 429} and statuses.count(201) <= 2, statuses
    assert await Snapshot.count() == 2 + statuses.count(201)

    # A real worker ends the jobs (failed: the segment's file does not exist): seats freed.
    start_process("worker", "serving queues")

    async def ended() -> bool:
        rows = await Snapshot.select(Snapshot.status) + await Bookmark.select(Bookmark.status)
        return all(r["status"] != "processing" for r in rows)

    await until(ended, "the worker ends the jobs", 60)
    again = await client.post(snapshots, json=snapshot, headers=one)
    assert again.status_code == 201, again.text
