"""Guide §3.3 and Appendix A: the stream registry, its filters, pagination and state machine."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from core.clock import iso
from core.errors import Conflict
from core.stream_states import TRANSITIONS, StreamState
from core.streams import StreamRecord, StreamService
from core.tables import Consumer, Device, Producer, Stream
from tests.conftest import bearer

SUMMARY_KEYS = {"id", "name", "camera_id", "state", "endpoints", "created_at"}


async def _device(client: httpx.AsyncClient, name: str = "Front Door Camera") -> uuid.UUID:
    response = await client.post("/api/v1/devices", json={"name": name,
                                                            "rtsp_url": "rtsp://192.0.2.1/s"})
    return uuid.UUID(response.json()["id"])


async def _stream(client: httpx.AsyncClient, state: StreamState = StreamState.INITIALIZING,
                  name: str = "cam") -> StreamRecord:
    service = StreamService()
    row, created = await service.create(await _device(client, name))
    assert created
    path = {
        StreamState.INITIALIZING: [],
        StreamState.READY: [StreamState.READY],
        StreamState.LIVE: [StreamState.READY, StreamState.LIVE],
        StreamState.ERROR: [StreamState.ERROR],
        StreamState.STOPPED: [StreamState.STOPPED],
        StreamState.CLOSED: [StreamState.STOPPED, StreamState.CLOSED],
    }[state]
    for step in path:
        row = await service.transition(row.id, step)
    return row


async def test_list_has_the_guide_shape_and_filters(client, admin_token):
    live = await _stream(client, StreamState.LIVE, "a")
    await _stream(client, StreamState.ERROR, "b")
    closed = await _stream(client, StreamState.CLOSED, "c")
    headers = bearer(admin_token)

    body = (await client.get("/v2/streams", headers=headers)).json()
    assert body["pagination"] == {"total": 3, "limit": 50, "offset": 0}
    assert all(set(s) == SUMMARY_KEYS for s in body["streams"])
    first = next(s for s in body["streams"] if s["id"] == str(live.id))
    assert first["endpoints"] == {
        "webrtc": f"/v2/streams/{live.id}/consume",
        "hls": f"/v2/streams/{live.id}/hls/playlist.m3u8",
        "health": f"/v2/streams/{live.id}/health",
    }
    assert first["name"] == "a" and first["state"] == "LIVE"

    only_live = (await client.get("/v2/streams", params={"state": "LIVE"}, headers=headers)).json()
    assert [s["id"] for s in only_live["streams"]] == [str(live.id)]
    assert only_live["pagination"]["total"] == 1

    by_camera = (await client.get("/v2/streams", params={"camera_id": str(closed.camera_id)},
                                  headers=headers)).json()
    assert [s["id"] for s in by_camera["streams"]] == [str(closed.id)]
    none = (await client.get("/v2/streams", params={"state": "LIVE", "camera_id": str(closed.camera_id)},
                             headers=headers)).json()
    assert none == {"streams": [], "pagination": {"total": 0, "limit": 50, "offset": 0}}


async def test_pagination_block_and_bounds(client, admin_token):
    ids = [str((await _stream(client, name=f"s{i}")).id) for i in range(5)]
    headers = bearer(admin_token)
    page = (await client.get("/v2/streams", params={"limit": 2, "offset": 1}, headers=headers)).json()
    assert page["pagination"] == {"total": 5, "limit": 2, "offset": 1}
    assert [s["id"] for s in page["streams"]] == list(reversed(ids))[1:3]  # newest first
    # The total comes with the page's rows; past the end there is no row to carry it.
    past = (await client.get("/v2/streams", params={"limit": 2, "offset": 7}, headers=headers)).json()
    assert past == {"streams": [], "pagination": {"total": 5, "limit": 2, "offset": 7}}
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"},
                   {"state": "BOGUS"}, {"camera_id": "nope"}):
        response = await client.get("/v2/streams", params=params, headers=headers)
        assert response.status_code == 400, (params, response.text)
        assert isinstance(response.json()["detail"], str)
    bogus = await client.get("/v2/streams", params={"state": "BOGUS"}, headers=headers)
    assert "state must be one of" in bogus.json()["detail"]


async def test_detail_and_health(client, admin_token):
    live = await _stream(client, StreamState.LIVE)
    headers = bearer(admin_token)
    detail = (await client.get(f"/v2/streams/{live.id}", headers=headers)).json()
    assert set(detail) == SUMMARY_KEYS | {"codec_config", "producer", "consumers", "uptime_seconds"}
    assert detail["consumers"] == {"count": 0, "active": 0}
    health = await client.get(f"/v2/streams/{live.id}/health", headers=headers)
    assert health.status_code == 200
    body = health.json()
    assert set(body) == {"stream_id", "state", "is_healthy", "uptime_seconds", "metrics",
                         "last_error", "checked_at", "codecs"}
    assert set(body["metrics"]) == {"bitrate_kbps", "fps", "packet_loss", "jitter_ms"}
    assert body["state"] == "LIVE"
    # LIVE in the registry, but no node has reported a measurement: not called healthy.
    assert body["is_healthy"] is False and body["checked_at"] is None

    service = StreamService()
    await Stream.update({Stream.node_id: "node-1"}).where(Stream.id == live.id)
    await service.report_metrics(live.id, "node-1", {"bitrate_kbps": 812.5, "fps": 15.0,
                                                     "packet_loss": 0.0, "jitter_ms": 3.2})
    reported = (await client.get(f"/v2/streams/{live.id}/health", headers=headers)).json()
    checked_at = (await service.get(live.id)).checked_at
    assert reported["is_healthy"] is True
    assert reported["checked_at"] == iso(checked_at)  # the report's time, not "now"
    assert reported["metrics"] == {"bitrate_kbps": 812.5, "fps": 15.0, "packet_loss": 0.0,
                                   "jitter_ms": 3.2}
    # The node stopped reporting a lease ago: the last figures are shown, not trusted.
    await Stream.update({Stream.checked_at: checked_at - timedelta(seconds=11)}).where(
        Stream.id == live.id)
    stale = (await client.get(f"/v2/streams/{live.id}/health", headers=headers)).json()
    assert stale["is_healthy"] is False and stale["metrics"]["fps"] == 15.0

    for path in (f"/v2/streams/{uuid.uuid4()}", f"/v2/streams/{uuid.uuid4()}/health"):
        missing = await client.get(path, headers=headers)
        assert missing.status_code == 404
        assert set(missing.json()) == {"detail"}
    assert (await client.get("/v2/streams/123", headers=headers)).status_code == 400


async def test_delete_moves_through_stopped_to_closed_and_closes_consumers(client, admin_token):
    live = await _stream(client, StreamState.LIVE)
    now = live.created_at
    await Producer(id=uuid.uuid4(), stream_id=live.id, mediasoup_id=f"producer-{uuid.uuid4().hex}",
                   transport_id="t", state="ACTIVE", created_at=now).save()
    for state in ("CONNECTED", "CONNECTING"):
        await Consumer(id=uuid.uuid4(), stream_id=live.id, client_id="v", state=state,
                       created_at=now).save()
    headers = bearer(admin_token)
    detail = (await client.get(f"/v2/streams/{live.id}", headers=headers)).json()
    assert detail["consumers"] == {"count": 2, "active": 1}
    assert detail["producer"]["state"] == "ACTIVE"

    response = await client.delete(f"/v2/streams/{live.id}", headers=headers)
    assert response.status_code == 204
    after = (await client.get(f"/v2/streams/{live.id}", headers=headers)).json()
    assert after["state"] == "CLOSED"
    assert after["consumers"] == {"count": 0, "active": 0}
    assert after["producer"]["state"] == "CLOSED"
    consumers = await Consumer.select().where(Consumer.stream_id == live.id)
    assert all(c["state"] == "CLOSED" and c["closed_at"] is not None for c in consumers)
    device = await Device.select(Device.is_active).where(Device.id == live.camera_id).first()
    assert device["is_active"] is False
    assert (await client.delete(f"/v2/streams/{live.id}", headers=headers)).status_code == 204
    assert (await client.delete(f"/v2/streams/{uuid.uuid4()}", headers=headers)).status_code == 404


@pytest.mark.parametrize("start", list(StreamState))
async def test_state_machine_refuses_illegal_transitions(client, start):
    row = await _stream(client, start)
    service = StreamService()
    for target in StreamState:
        allowed = target in TRANSITIONS[start]
        fresh = await _stream(client, start, name=f"{start}-{target}") if allowed else row
        if allowed:
            moved = await service.transition(fresh.id, target)
            assert moved.state is target
        else:
            with pytest.raises(Conflict):
                await service.transition(row.id, target)
            assert (await service.get(row.id)).state == start.value


async def test_concurrent_creates_make_one_active_stream(client):
    camera = await _device(client)
    service = StreamService()
    results = await asyncio.gather(*(service.create(camera) for _ in range(8)))
    assert len({row.id for row, _ in results}) == 1
    assert sum(created for _, created in results) == 1
