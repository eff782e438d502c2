"""Guide §3.2: V1 devices — exact shapes, CRUD, bad input, password masking at rest and in logs."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest

from core.tables import Device

DEVICE_KEYS = {"id", "name", "description", "rtsp_url", "is_active", "location", "created_at",
               "updated_at"}


async def _create(client: httpx.AsyncClient, **fields: object) -> dict:
    body = {"name": "Parking Lot Camera", "description": "Covers parking area B",
            "rtsp_url": "rtsp://192.0.2.101:554/stream1", "location": "Parking Lot B", **fields}
    response = await client.post("/api/v1/devices", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_get_list_have_the_guide_shapes(client):
    created = await _create(client)
    assert set(created) == DEVICE_KEYS
    assert created["is_active"] is False
    assert created["updated_at"] is None
    assert created["rtsp_url"] == "rtsp://192.0.2.101:554/stream1"
    uuid.UUID(created["id"])

    fetched = await client.get(f"/api/v1/devices/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created

    listed = await client.get("/api/v1/devices", params={"skip": 0, "limit": 100})
    assert listed.status_code == 200
    assert created in listed.json()


async def test_list_paginates_with_skip_and_limit(client):
    ids = [(await _create(client, name=f"cam {i}"))["id"] for i in range(5)]
    page = (await client.get("/api/v1/devices", params={"skip": 1, "limit": 2})).json()
    assert [d["id"] for d in page] == ids[1:3]
    assert (await client.get("/api/v1/devices", params={"skip": 10})).json() == []


async def test_update_changes_only_given_fields_and_delete_removes(client):
    created = await _create(client)
    updated = await client.put(f"/api/v1/devices/{created['id']}",
                               json={"location": "Gate 2", "rtsp_transport": "udp"})
    assert updated.status_code == 200
    body = updated.json()
    assert body["location"] == "Gate 2"
    assert body["name"] == created["name"]
    assert body["updated_at"] is not None
    row = await Device.select(Device.rtsp_transport).where(Device.id == created["id"]).first()
    assert row["rtsp_transport"] == "udp"

    assert (await client.delete(f"/api/v1/devices/{created['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/devices/{created['id']}")).status_code == 404
    assert (await client.delete(f"/api/v1/devices/{created['id']}")).status_code == 404


async def test_status_has_the_streaming_block(client):
    from core.streams import StreamService

    created = await _create(client)
    status = (await client.get(f"/api/v1/devices/{created['id']}/status")).json()
    assert set(status) == (DEVICE_KEYS - {"id"}) | {"device_id", "streaming"}
    assert status["streaming"] == {"active": False, "room_id": None, "started_at": None}

    await StreamService().create(uuid.UUID(created["id"]))
    status = (await client.get(f"/api/v1/devices/{created['id']}/status")).json()
    assert status["streaming"]["active"] is True
    assert status["streaming"]["room_id"] == created["id"]
    assert status["is_active"] is True
    # A device with a running stream cannot be deleted out from under it.
    assert (await client.delete(f"/api/v1/devices/{created['id']}")).status_code == 409


async def test_password_is_masked_everywhere_and_not_readable_at_rest(client, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cr3t-Pa55"
    created = await _create(client, rtsp_url=f"rtsp://admin:{secret}@192.0.2.7:554/live")
    assert created["rtsp_url"] == "rtsp://admin:******@192.0.2.7:554/live"
    responses = [
        await client.get(f"/api/v1/devices/{created['id']}"),
        await client.get("/api/v1/devices"),
        await client.get(f"/api/v1/devices/{created['id']}/status"),
        await client.put(f"/api/v1/devices/{created['id']}", json={"name": "renamed"}),
    ]
    for response in responses:
        assert response.status_code == 200
        assert secret not in response.text
        assert "******" in response.text

    row = await Device.select().where(Device.id == created["id"]).first()
    assert all(secret not in str(value) for value in row.values()), "plaintext in the row"
    assert row["rtsp_url"] == "rtsp://admin@192.0.2.7:554/live"
    assert secret not in caplog.text

    # The sealed password still opens with the server's key (ingest needs it).
    from api.state import services_of

    services = services_of(client._transport.app)  # type: ignore[attr-defined]
    device = await services.devices.get(row["id"])
    assert services.devices.source_url(device) == f"rtsp://admin:{secret}@192.0.2.7:554/live"


async def test_password_changes_with_the_url_and_is_dropped_with_it(client):
    created = await _create(client, rtsp_url="rtsp://u:one@192.0.2.8/a")
    await client.put(f"/api/v1/devices/{created['id']}", json={"rtsp_url": "rtsp://192.0.2.8/b"})
    row = await Device.select().where(Device.id == created["id"]).first()
    assert row["rtsp_secret"] is None
    assert row["rtsp_url"] == "rtsp://192.0.2.8/b"


@pytest.mark.parametrize("body, fragment", [
    ({"name": "x", "rtsp_url": "http://192.0.2.1/stream"}, "rtsp://"),
    ({"name": "x", "rtsp_url": "ftp://a"}, "rtsp://"),
    ({"name": "x", "rtsp_url": "rtsp://"}, "host"),
    ({"name": "x", "rtsp_url": "rtsp://host:99999/x"}, "URL"),
    ({"name": "x", "rtsp_url": "rtsp://a b/"}, "whitespace"),
    ({"name": "  ", "rtsp_url": "rtsp://192.0.2.1/"}, "name"),
    ({"rtsp_url": "rtsp://192.0.2.1/"}, "name"),
    ({"name": "x"}, "rtsp_url"),
    ({"name": 7, "rtsp_url": "rtsp://192.0.2.1/"}, "name"),
    ({"name": "x" * 300, "rtsp_url": "rtsp://192.0.2.1/"}, "name"),
    ({"name": "x", "rtsp_url": "rtsp://192.0.2.1/", "rtsp_transport": "sctp"}, "rtsp_transport"),
    ({"name": "a\u0000b", "rtsp_url": "rtsp://192.0.2.1/"}, "control characters"),
    ({"name": "x", "location": "l\x1b[31m", "rtsp_url": "rtsp://192.0.2.1/"}, "control characters"),
    ({"name": "x", "rtsp_url": "rtsp://192.0.2.1/\u0000"}, "control characters"),
    ({"name": "x", "rtsp_url": "rtsp://192.0.2.1/", "transcode": "sometimes"}, "transcode"),
    ({"name": "x", "rtsp_url": "rtsp://192.0.2.1/", "transcode_width": 4}, "transcode_width"),
    ({"name": "x", "rtsp_url": "rtsp://192.0.2.1/", "transcode_kbps": "fast"}, "transcode_kbps"),
])
async def test_bad_device_input_is_400_with_a_readable_detail(client, body, fragment):
    response = await client.post("/api/v1/devices", json=body)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and fragment.lower() in detail.lower(), detail


async def test_bad_ids_queries_and_json(client):
    assert (await client.get("/api/v1/devices/not-a-uuid")).status_code == 400
    unknown = uuid.uuid4()
    missing = await client.get(f"/api/v1/devices/{unknown}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"Device {unknown} not found"}
    for params in ({"limit": 0}, {"limit": 5000}, {"skip": -1}, {"limit": "ten"}):
        response = await client.get("/api/v1/devices", params=params)
        assert response.status_code == 400, (params, response.text)
    broken = await client.post("/api/v1/devices", content=b"{not json",
                               headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert isinstance(broken.json()["detail"], str)
    listing = await client.post("/api/v1/devices", json=["a", "list"])
    assert listing.status_code == 400


async def test_transcode_settings_are_kept_and_merged(client):
    """docs/codecs.md: the transcode fields go into the device's settings; an update merges."""
    created = await _create(client, transcode="always", transcode_width=1280)
    assert set(created) == DEVICE_KEYS  # the guide's shape is unchanged
    ident = uuid.UUID(created["id"])
    updated = await client.put(f"/api/v1/devices/{ident}", json={"transcode_kbps": 1500})
    assert updated.status_code == 200, updated.text
    row = await Device.select(Device.settings).where(Device.id == ident).first()
    settings = row["settings"]
    settings = settings if isinstance(settings, dict) else json.loads(settings)
    assert settings == {"transcode": "always", "transcode_width": 1280, "transcode_kbps": 1500}
