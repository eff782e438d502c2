"""Housekeeping of lost jobs and abandoned starts, on the real database (both backends)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from core.captures import stale_jobs
from core.clock import utcnow
from core.stream_states import StreamState
from core.tables import Bookmark, Snapshot, Stream
from jobs.housekeeping import close_abandoned_starts


async def _snapshot(attempts: int, age_s: float, status: str = "processing") -> uuid.UUID:
    ident = uuid.uuid4()
    then = utcnow() - timedelta(seconds=age_s)
    await Snapshot(id=ident, stream_id=uuid.uuid4(), timestamp=then, source="live",
                   status=status, attempts=attempts, created_at=then, updated_at=then).save()
    return ident


async def test_stale_jobs_run_again_then_fail_after_three_attempts(app):
    fresh = await _snapshot(0, age_s=1)
    stale = await _snapshot(0, age_s=600)
    exhausted = await _snapshot(3, age_s=600)
    finished = await _snapshot(0, age_s=600, status="ready")
    now = utcnow()
    bookmark = uuid.uuid4()
    then = now - timedelta(seconds=600)
    await Bookmark(id=bookmark, stream_id=uuid.uuid4(), center_timestamp=then, start_time=then,
                   end_time=then, source="live", status="processing", attempts=2,
                   created_at=then, updated_at=then).save()

    rerun = await stale_jobs(stale_s=120)

    assert rerun == {"snapshot": [stale], "bookmark": [bookmark]}
    rows = {r["id"]: r for r in await Snapshot.select(Snapshot.id, Snapshot.status,
                                                      Snapshot.attempts, Snapshot.error)}
    assert rows[stale]["attempts"] == 1 and rows[stale]["status"] == "processing"
    assert rows[fresh]["attempts"] == 0
    assert rows[exhausted]["status"] == "failed"
    assert rows[exhausted]["error"] == "the job was lost (worker restarts)"
    assert rows[finished]["status"] == "ready"
    # The rerun refreshed the row: the next pass does not count it again at once.
    assert await stale_jobs(stale_s=120) == {"snapshot": [], "bookmark": []}


async def test_a_start_no_node_took_is_closed(app):
    old, recent, owned = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for ident, age, node in ((old, 600, None), (recent, 5, None), (owned, 600, "node-1")):
        then = utcnow() - timedelta(seconds=age)
        await Stream(id=ident, camera_id=uuid.uuid4(), name="x", node_id=node,
                     state=StreamState.INITIALIZING.value, created_at=then, updated_at=then).save()
    assert await close_abandoned_starts() == 1
    states = {r["id"]: r for r in await Stream.select(Stream.id, Stream.state, Stream.last_error)}
    assert states[old]["state"] == "CLOSED"
    assert states[old]["last_error"].startswith("MEDIASOUP_UNAVAILABLE")
    assert states[recent]["state"] == states[owned]["state"] == "INITIALIZING"
