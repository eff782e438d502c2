"""VAS_MAX_JOBS_PER_CLIENT on its default (20): the 21st snapshot or bookmark job in progress
of one client is refused with 429 and Retry-After, and writes no row (the bound itself is
tested with a small cap in tests/api/test_job_limits.py)."""

from __future__ import annotations

import httpx
import pytest

from core.settings import load_settings
from core.tables import Bookmark, Snapshot
from tests.api.test_job_limits import SCOPES, _stream_with_a_segment
from tests.conftest import bearer, token_for

# The count lives in Redis and the rows in the database: one backend is enough here.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


async def test_the_twenty_first_job_in_progress_is_refused(
    app, client: httpx.AsyncClient, admin_token: str, settings_env: dict[str, str]
) -> None:
    assert "VAS_MAX_JOBS_PER_CLIENT" not in settings_env
    assert load_settings(settings_env).auth.max_jobs_per_client == 20
    stream_id, moment = await _stream_with_a_segment(app, client, admin_token)
    caller = bearer(await token_for(client, admin_token, SCOPES))
    snapshots, bookmarks = f"/v2/streams/{stream_id}/snapshots", f"/v2/streams/{stream_id}/bookmarks"
    snapshot = {"source": "historical", "timestamp": moment}
    bookmark = {"source": "historical", "center_timestamp": moment, "before_seconds": 1,
                "after_seconds": 1}
    # No worker runs: every job stays in progress. 10 snapshots and 10 bookmarks fill the bound.
    for path, body in [(snapshots, snapshot)] * 10 + [(bookmarks, bookmark)] * 10:
        made = await client.post(path, json=body, headers=caller)
        assert made.status_code == 201, made.text
    for path, body in ((snapshots, snapshot), (bookmarks, bookmark)):
        refused = await client.post(path, json=body, headers=caller)
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["Retry-After"]) >= 1
        assert "VAS_MAX_JOBS_PER_CLIENT" in refused.json()["detail"]
    assert await Snapshot.count() == 10 and await Bookmark.count() == 10
