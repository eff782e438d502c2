"""OmniSight cameras without streaming: the document's bodies, exact keys, the password kept
secret, pagination and the location filter, one table with the V1 devices, errors."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import httpx
import pytest

from core.tables import Device
from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of, new_user

LIST_KEYS = {"id", "name", "rtspUrl", "status", "ipAddress", "location", "model", "createdAt",
             "updatedAt"}
CREATED_KEYS = LIST_KEYS | {"settings"}
DETAIL_KEYS = CREATED_KEYS | {"username", "password"}
UPDATED_KEYS = CREATED_KEYS - {"createdAt"}
PASSWORD = "s3cret-Pa55-" + uuid.uuid4().hex[:8]

DOC_CREATE = {
    "name": "Living Room Camera",
    "rtspUrl": "rtsp://192.0.2.103/stream3",
    "username": "admin",
    "password": PASSWORD,
    "ipAddress": "192.168.1.102",
    "location": "Living Room",
    "model": "Generic RTSP Camera",
    "settings": {"resolution": "1080p", "framerate": 30},
}


async def create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {**DOC_CREATE, "name": f"cam-{uuid.uuid4().hex[:6]}", **fields}
    response = await client.post(f"{BASE}/cameras", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_get_update_delete_with_the_documents_bodies(client, admin_user, caplog):
    caplog.set_level(logging.DEBUG)
    headers = bearer(admin_user["token"])
    response = await client.post(f"{BASE}/cameras", json=DOC_CREATE, headers=headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == CREATED_KEYS
    assert created["rtspUrl"] == "rtsp://192.0.2.103/stream3"
    assert (created["status"], created["ipAddress"], created["location"], created["model"]) == (
        "offline", "192.168.1.102", "Living Room", "Generic RTSP Camera")
    assert created["settings"] == {"resolution": "1080p", "framerate": 30}
    assert created["createdAt"].endswith("Z") and created["updatedAt"].endswith("Z")

    detail = await client.get(f"{BASE}/cameras/{created['id']}", headers=headers)
    assert detail.status_code == 200
    shown = detail.json()
    assert set(shown) == DETAIL_KEYS
    assert (shown["username"], shown["password"]) == ("admin", "******")
    assert {k: shown[k] for k in CREATED_KEYS} == created

    # The password is stored encrypted, never in clear.
    row = await Device.select().where(Device.id == uuid.UUID(created["id"])).first()
    assert PASSWORD not in str(row) and row["rtsp_secret"]

    update = {"name": "Living Room Camera Updated", "rtspUrl": "rtsp://192.0.2.103/stream3_updated",
              "username": "admin", "password": "newpassword123", "location": "Living Room Corner",
              "settings": {"resolution": "720p", "framerate": 15}}
    changed = await client.put(f"{BASE}/cameras/{created['id']}", json=update, headers=headers)
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert set(body) == UPDATED_KEYS
    assert body["name"] == update["name"] and body["location"] == "Living Room Corner"
    assert body["rtspUrl"] == "rtsp://192.0.2.103/stream3_updated"
    assert body["settings"] == {"resolution": "720p", "framerate": 15}
    assert body["ipAddress"] == "192.168.1.102" and body["model"] == "Generic RTSP Camera"

    # A partial update keeps the rest, the password included.
    renamed = await client.put(f"{BASE}/cameras/{created['id']}", json={"name": "Den"},
                               headers=headers)
    assert renamed.status_code == 200
    again = (await client.get(f"{BASE}/cameras/{created['id']}", headers=headers)).json()
    assert again["name"] == "Den" and again["password"] == "******"
    assert again["rtspUrl"] == "rtsp://192.0.2.103/stream3_updated"

    deleted = await client.delete(f"{BASE}/cameras/{created['id']}", headers=headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Camera deleted successfully"}
    missing = await client.get(f"{BASE}/cameras/{created['id']}", headers=headers)
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "RESOURCE_NOT_FOUND"

    for secret in (PASSWORD, "newpassword123"):
        assert secret not in caplog.text


async def test_password_appears_only_masked_and_only_on_get_by_id(client, admin_user, admin_token):
    headers = bearer(admin_user["token"])
    camera = await create(client, headers)
    assert "password" not in camera and "username" not in camera
    listed = (await client.get(f"{BASE}/cameras", headers=headers)).json()
    for item in listed["cameras"]:
        assert set(item) == LIST_KEYS
    bodies = [
        (await client.get(f"{BASE}/cameras", headers=headers)).text,
        (await client.get(f"{BASE}/cameras/{camera['id']}/status", headers=headers)).text,
        (await client.get(f"/api/v1/devices/{camera['id']}")).text,
        (await client.get("/api/v1/devices")).text,
    ]
    for text in bodies:
        assert PASSWORD not in text
    # The V1 view shows the one device with its password masked in the URL.
    device = (await client.get(f"/api/v1/devices/{camera['id']}")).json()
    assert device["rtsp_url"] == "rtsp://admin:******@192.0.2.103/stream3"


async def test_ip_address_defaults_to_the_urls_host_and_defaults_are_empty(client, admin_user):
    headers = bearer(admin_user["token"])
    response = await client.post(f"{BASE}/cameras", headers=headers, json={
        "name": "Bare", "rtspUrl": "rtsp://10.1.2.3:8554/live"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["ipAddress"] == "10.1.2.3"
    assert body["settings"] == {} and body["model"] is None and body["location"] is None
    detail = (await client.get(f"{BASE}/cameras/{body['id']}", headers=headers)).json()
    assert detail["username"] is None and detail["password"] is None


async def test_a_camera_is_a_device_both_ways(client, admin_user):
    headers = bearer(admin_user["token"])
    camera = await create(client, headers)
    devices = (await client.get("/api/v1/devices")).json()
    assert camera["id"] in {d["id"] for d in devices}

    made = await client.post("/api/v1/devices", json={
        "name": "v1-cam", "rtsp_url": "rtsp://viewer:pw-123@10.0.0.9/h264", "location": "Gate"})
    assert made.status_code == 201
    device_id = made.json()["id"]
    shown = (await client.get(f"{BASE}/cameras/{device_id}", headers=headers)).json()
    assert shown["rtspUrl"] == "rtsp://10.0.0.9/h264"
    assert (shown["username"], shown["password"], shown["ipAddress"]) == ("viewer", "******",
                                                                         "10.0.0.9")
    assert shown["location"] == "Gate" and shown["status"] == "offline"
    # Deleting on one side deletes on the other.
    assert (await client.delete(f"{BASE}/cameras/{device_id}", headers=headers)).status_code == 200
    assert (await client.get(f"/api/v1/devices/{device_id}")).status_code == 404


async def test_transcode_settings_in_camelcase_merged_key_by_key_and_shared_with_v1(
        client, admin_user):
    headers = bearer(admin_user["token"])
    camera = await create(client, headers, settings={
        "resolution": "1080p", "transcode": "always", "transcodeWidth": 640,
        "transcodeKbps": 800})
    assert camera["settings"] == {"resolution": "1080p", "transcode": "always",
                                  "transcodeWidth": 640, "transcodeKbps": 800}
    # Kept as the device's settings, the ones the stream's next start reads.
    row = await Device.select(Device.settings).where(
        Device.id == uuid.UUID(camera["id"])).first()
    stored = row["settings"] if isinstance(row["settings"], dict) else json.loads(row["settings"])
    assert stored == {"resolution": "1080p", "transcode": "always", "transcode_width": 640,
                      "transcode_kbps": 800}

    # An update changes the keys it sends; null removes one (its default applies again).
    changed = await client.put(f"{BASE}/cameras/{camera['id']}", headers=headers, json={
        "settings": {"transcode": "never", "transcodeKbps": None, "transcodeHeight": 360}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["settings"] == {"resolution": "1080p", "transcode": "never",
                                          "transcodeWidth": 640, "transcodeHeight": 360}
    detail = (await client.get(f"{BASE}/cameras/{camera['id']}", headers=headers)).json()
    assert detail["settings"] == changed.json()["settings"]

    # Set through the V1 device route, shown here; an OmniSight update keeps it.
    v1 = await client.put(f"/api/v1/devices/{camera['id']}", json={"transcode_kbps": 1200})
    assert v1.status_code == 200, v1.text
    kept = await client.put(f"{BASE}/cameras/{camera['id']}", headers=headers,
                            json={"settings": {"framerate": 10}})
    assert kept.json()["settings"] == {"resolution": "1080p", "framerate": 10,
                                       "transcode": "never", "transcodeWidth": 640,
                                       "transcodeHeight": 360, "transcodeKbps": 1200}


@pytest.mark.parametrize(("given", "field"), [
    ({"transcode": "sometimes"}, "settings.transcode"),
    ({"transcodeWidth": 8}, "settings.transcodeWidth"),
    ({"transcodeHeight": 5000}, "settings.transcodeHeight"),
    ({"transcodeKbps": 50}, "settings.transcodeKbps"),
    ({"transcodeKbps": "fast"}, "settings.transcodeKbps"),
    ({"transcode_kbps": 800}, "settings.transcode_kbps"),
])
async def test_bad_transcode_settings_are_400(client, admin_user, given, field):
    headers = bearer(admin_user["token"])
    body = {"name": "x", "rtspUrl": "rtsp://example.com/a", "settings": given}
    response = await client.post(f"{BASE}/cameras", json=body, headers=headers)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == field, error
    camera = await create(client, headers)
    updated = await client.put(f"{BASE}/cameras/{camera['id']}", json={"settings": given},
                               headers=headers)
    assert updated.status_code == 400 and error_of(updated)["details"]["field"] == field


async def test_pages_and_the_location_filter(client, admin_user):
    headers = bearer(admin_user["token"])
    place = f"Hall {uuid.uuid4().hex[:6]}"
    made = [await create(client, headers, location=place) for _ in range(3)]
    await create(client, headers, location="Elsewhere")
    first = (await client.get(f"{BASE}/cameras", params={"location": place, "limit": 2},
                              headers=headers)).json()
    assert set(first) == {"cameras", "total", "page", "limit", "pages"}
    assert (first["total"], first["page"], first["limit"], first["pages"]) == (3, 1, 2, 2)
    second = (await client.get(f"{BASE}/cameras", params={"location": place, "limit": 2,
                                                           "page": 2}, headers=headers)).json()
    ids = [c["id"] for c in first["cameras"] + second["cameras"]]
    assert ids == [c["id"] for c in made]  # oldest first
    offline = (await client.get(f"{BASE}/cameras", params={"status": "offline"},
                                headers=headers)).json()
    assert offline["total"] == 4
    online = (await client.get(f"{BASE}/cameras", params={"status": "online"},
                               headers=headers)).json()
    assert (online["total"], online["cameras"], online["pages"]) == (0, [], 0)
    default = (await client.get(f"{BASE}/cameras", headers=headers)).json()
    assert (default["page"], default["limit"]) == (1, 10)


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "sleeping"}, "status"), ({"page": "0"}, "page"), ({"limit": "101"}, "limit"),
    ({"limit": "x"}, "limit"),
])
async def test_bad_queries_are_400(client, admin_user, params, field):
    response = await client.get(f"{BASE}/cameras", params=params,
                                headers=bearer(admin_user["token"]))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == field


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "x"}, "rtspUrl"),
    ({"name": "x", "rtspUrl": "http://example.com/a"}, None),
    ({"name": "x", "rtspUrl": "rtsp://example.com/a", "ipAddress": "not-an-ip"}, "ipAddress"),
    ({"name": "x", "rtspUrl": "rtsp://example.com/a", "settings": {"framerate": 0}}, None),
    ({"name": "x", "rtspUrl": "rtsp://example.com/a", "settings": {"zoom": 2}}, None),
    ({"name": "x", "rtspUrl": "rtsp://example.com/a", "role": "admin"}, "role"),
    ({"name": "", "rtspUrl": "rtsp://example.com/a"}, None),
])
async def test_bad_bodies_are_400(client, admin_user, body, field):
    response = await client.post(f"{BASE}/cameras", json=body, headers=bearer(admin_user["token"]))
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    if field is not None:
        assert error["details"]["field"] == field


async def test_error_shapes_401_403_404_409(client, admin_user):
    headers = bearer(admin_user["token"])
    no_token = await client.get(f"{BASE}/cameras")
    assert no_token.status_code == 401 and error_of(no_token)["code"] == "UNAUTHORIZED"
    user = await new_user(client)
    forbidden = await client.post(f"{BASE}/cameras", json=DOC_CREATE,
                                  headers=bearer(user["token"]))
    assert forbidden.status_code == 403
    assert "cameras:write" in error_of(forbidden)["message"]
    readable = await client.get(f"{BASE}/cameras", headers=bearer(user["token"]))
    assert readable.status_code == 200
    unknown = str(uuid.uuid4())
    for method, path in (("GET", ""), ("PUT", ""), ("DELETE", ""), ("GET", "/status"),
                         ("POST", "/stream/start"), ("POST", "/stream/stop")):
        response = await client.request(method, f"{BASE}/cameras/{unknown}{path}", headers=headers,
                                        json={} if method == "PUT" else None)
        assert response.status_code == 404, (method, path, response.text)
        assert error_of(response)["code"] == "RESOURCE_NOT_FOUND"
    bad_id = await client.get(f"{BASE}/cameras/not-a-uuid", headers=headers)
    assert bad_id.status_code == 400 and error_of(bad_id)["details"]["field"] == "id"
    camera = await create(client, headers)
    not_streaming = await client.post(f"{BASE}/cameras/{camera['id']}/stream/stop",
                                      headers=headers)
    assert not_streaming.status_code == 409
    assert error_of(not_streaming)["code"] == "CONFLICT"
