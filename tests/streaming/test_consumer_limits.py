"""VAS_MAX_CONSUMERS_PER_CLIENT with real cameras, a real media node, Redis and the database:
a caller's open consumers, WHEP sessions and OmniSight live sessions are counted together
across streams; beyond the bound both families answer 429 in their own shape; a consumer
closed by its viewer or by its stream's end frees its seat. And VAS_MAX_JOBS_PER_CLIENT on
the OmniSight snapshot, made by the real node: its seat is free again once it completes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import bearer, token_for
from tests.vas_fixtures import add_device

SCOPES = ["streams:consume", "streams:read", "cameras:read", "bookmarks:write"]
# The counting queries are the ones tests/api/test_job_limits.py runs on both backends; this
# one needs two cameras and a node, so it runs once.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "VAS_MAX_CONSUMERS_PER_CLIENT": "2", "VAS_MAX_JOBS_PER_CLIENT": "1"}


async def _live(client: httpx.AsyncClient, start_camera) -> tuple[str, str]:
    device_id = await add_device(client, start_camera().url)
    answer = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert answer.status_code == 200, answer.text
    return device_id, answer.json()["v2_stream_id"]


async def _open(client: httpx.AsyncClient, headers: dict[str, str], stream_id: str) -> set[str]:
    listed = (await client.get(f"/v2/streams/{stream_id}/consumers", headers=headers)).json()
    return {c["id"] for c in listed["consumers"] if c["state"] != "CLOSED"}


async def test_consumers_are_bounded_per_client_across_streams_and_families(
    client: httpx.AsyncClient, admin_token: str, media_node, start_camera
) -> None:
    (camera1, stream1), (camera2, stream2) = [await _live(client, start_camera) for _ in "12"]
    admin = bearer(admin_token)
    one = bearer(await token_for(client, admin_token, SCOPES))
    caps = (await client.get(f"/v2/streams/{stream1}/router-capabilities",
                             headers=admin)).json()["rtp_capabilities"]
    body = {"client_id": "viewer", "rtp_capabilities": caps}

    async def consume(stream_id: str, headers: dict[str, str]) -> httpx.Response:
        return await client.post(f"/v2/streams/{stream_id}/consume", json=body, headers=headers)

    first = await consume(stream1, one)
    assert first.status_code == 201, first.text
    assert (await consume(stream2, one)).status_code == 201  # counted across streams

    refused = await consume(stream1, one)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    assert "VAS_MAX_CONSUMERS_PER_CLIENT" in refused.json()["detail"]
    whep = await client.post(f"/v2/streams/{stream1}/whep", content=b"v=0",
                             headers={**one, "Content-Type": "application/sdp"})
    assert whep.status_code == 429, whep.text
    live = f"/api/v1/cameras/{camera1}/live/webrtc"
    omni = await client.get(live, headers=one)
    assert omni.status_code == 429, omni.text
    error = omni.json()["error"]
    assert error["code"] == "RATE_LIMITED"
    assert error["details"]["setting"] == "VAS_MAX_CONSUMERS_PER_CLIENT"
    assert error["details"]["limit"] == 2 and omni.headers["Retry-After"]
    assert len(await _open(client, admin, stream1)) == 1  # nothing was opened for them

    # Another client is not affected.
    other = bearer(await token_for(client, admin_token, SCOPES))
    assert (await consume(stream1, other)).status_code == 201

    # A consumer its viewer closes frees the seat (here taken by an OmniSight live session).
    mine = first.json()["consumer_id"]
    assert (await client.delete(f"/v2/streams/{stream1}/consumers/{mine}",
                                headers=one)).status_code == 204
    session = await client.get(live, headers=one)
    assert session.status_code == 200, session.text
    assert (await consume(stream1, one)).status_code == 429
    # The end of a stream closes its consumers: that seat is free again too.
    stopped = await client.post(f"/api/v1/devices/{camera2}/stop-stream")
    assert stopped.status_code == 200, stopped.text
    assert (await consume(stream1, one)).status_code == 201

    # Requests racing for the seats: at most the bound is admitted, and what the node opened
    # for a refused one is closed again.
    third = bearer(await token_for(client, admin_token, SCOPES))
    answers = await asyncio.gather(*(consume(stream1, third) for _ in range(5)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 429} and statuses.count(201) <= 2, statuses
    admitted = {a.json()["consumer_id"] for a in answers if a.status_code == 201}
    still_open = await _open(client, admin, stream1)
    assert admitted <= still_open
    # Open on stream 1: one's consumer and live session, the other's, and third's admitted.
    assert len(still_open) == 3 + len(admitted)

    await _omnisight_snapshots_count_as_jobs(client, one, camera1, stream1)  # same node


async def _omnisight_snapshots_count_as_jobs(client: httpx.AsyncClient, one: dict[str, str],
                                             camera: str, stream: str) -> None:
    snapshot = f"/api/v1/cameras/{camera}/snapshot"
    for _ in range(2):  # the bound is 1: each completed snapshot frees its seat
        made = await client.get(snapshot, headers=one, timeout=30)
        assert made.status_code == 200, made.text
        assert made.content[:2] == b"\xff\xd8"
    # A live bookmark waits for its post-roll (and no worker runs here): it holds the seat.
    held = await client.post(f"/v2/streams/{stream}/bookmarks", headers=one,
                             json={"source": "live", "before_seconds": 1, "after_seconds": 300})
    assert held.status_code == 201, held.text
    refused = await client.get(snapshot, headers=one)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert refused.json()["error"]["details"]["setting"] == "VAS_MAX_JOBS_PER_CLIENT"
    assert int(refused.headers["Retry-After"]) >= 1
