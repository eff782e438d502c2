"""OmniSight detection settings: global GET/PUT, per camera with fallback to the global,
strict validation of every field (VALIDATION_ERROR), scopes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.detection_settings import DEFAULTS, _polygon
from core.errors import InvalidInput
from media.detection.regions import InvalidRegionError, validate_polygon
from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of, new_user
from tests.vas_fixtures import add_device

FULL_FRAME = [[0, 0], [1, 0], [1, 1], [0, 1]]


async def test_global_defaults_in_the_documents_shape(client, admin_user):
    user = await new_user(client)
    response = await client.get(f"{BASE}/detection/settings", headers=bearer(user["token"]))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "enabled": True, "detectionInterval": 1000, "minConfidence": 0.6,
        "regions": [{"name": "Full Frame", "coordinates": FULL_FRAME, "enabled": True}],
        "objectTypes": DEFAULTS["objectTypes"],
        "motionDetection": {"enabled": True, "sensitivity": 0.5, "minArea": 500},
    }
    assert (await client.get(f"{BASE}/detection/settings")).status_code == 401
    refused = await client.put(f"{BASE}/detection/settings", headers=bearer(user["token"]),
                               json={"enabled": False})
    assert refused.status_code == 403 and error_of(refused)["code"] == "FORBIDDEN"


async def test_put_global_changes_the_given_fields_and_the_system_settings(client, admin_user):
    headers = bearer(admin_user["token"])
    body = {
        "enabled": True, "detectionInterval": 500, "minConfidence": 0.7,
        "regions": [{"name": "Entrance Area",
                     "coordinates": [[0.2, 0.2], [0.8, 0.2], [0.8, 0.8], [0.2, 0.8]],
                     "enabled": True}],
        "objectTypes": [{"type": "person", "enabled": True, "minConfidence": 0.8},
                        {"type": "vehicle", "enabled": True, "minConfidence": 0.8}],
        "motionDetection": {"enabled": True, "sensitivity": 0.7, "minArea": 300},
    }
    response = await client.put(f"{BASE}/detection/settings", headers=headers, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Detection settings updated successfully"
    expected = {**body, "objectTypes": [*body["objectTypes"], DEFAULTS["objectTypes"][2]]}
    assert response.json()["settings"] == expected
    assert (await client.get(f"{BASE}/detection/settings", headers=headers)).json() == expected
    system = (await client.get(f"{BASE}/system/settings", headers=headers)).json()
    assert system["detection"] == {"enabled": True, "defaultSettings": {
        "detectionInterval": 500, "minConfidence": 0.7}}

    partial = await client.put(f"{BASE}/detection/settings", headers=headers,
                               json={"motionDetection": {"minArea": 800}})
    assert partial.status_code == 200, partial.text
    assert partial.json()["settings"] == {
        **expected, "motionDetection": {"enabled": True, "sensitivity": 0.7, "minArea": 800}}
    # The system settings route changes the same values.
    await client.put(f"{BASE}/system/settings", headers=headers,
                     json={"detection": {"enabled": False, "defaultSettings": {"minConfidence": 0.5}}})
    now = (await client.get(f"{BASE}/detection/settings", headers=headers)).json()
    assert now["enabled"] is False and now["minConfidence"] == 0.5


async def test_a_camera_falls_back_to_the_global_for_what_it_does_not_set(client, admin_user):
    headers = bearer(admin_user["token"])
    camera = await add_device(client, "rtsp://127.0.0.1:8554/cam")
    start = await client.get(f"{BASE}/cameras/{camera}/detection", headers=headers)
    assert start.status_code == 200, start.text
    global_doc = (await client.get(f"{BASE}/detection/settings", headers=headers)).json()
    assert start.json() == {"cameraId": camera, **global_doc}

    own = {
        "enabled": True, "detectionInterval": 500,
        "regions": [{"name": "Driveway", "coordinates": [[0.1, 0.4], [0.9, 0.4], [0.9, 0.9],
                                                          [0.1, 0.9]], "enabled": True},
                    {"name": "Porch", "coordinates": [[0.4, 0.1], [0.6, 0.1], [0.6, 0.3],
                                                       [0.4, 0.3]], "enabled": False}],
        "objectTypes": [{"type": "person", "enabled": True, "minConfidence": 0.8}],
        "motionDetection": {"sensitivity": 0.9},
    }
    response = await client.put(f"{BASE}/cameras/{camera}/detection", headers=headers, json=own)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Camera detection settings updated successfully"
    effective = response.json()["settings"]
    assert effective == {
        "cameraId": camera, "enabled": True, "detectionInterval": 500,
        "minConfidence": global_doc["minConfidence"], "regions": own["regions"],
        "objectTypes": [own["objectTypes"][0], *global_doc["objectTypes"][1:]],
        "motionDetection": {**global_doc["motionDetection"], "sensitivity": 0.9},
    }
    assert (await client.get(f"{BASE}/cameras/{camera}/detection", headers=headers)).json() == effective

    # What the camera does not set follows later global changes; what it sets does not.
    await client.put(f"{BASE}/detection/settings", headers=headers, json={
        "minConfidence": 0.4, "detectionInterval": 2000,
        "motionDetection": {"minArea": 50, "sensitivity": 0.1}})
    after = (await client.get(f"{BASE}/cameras/{camera}/detection", headers=headers)).json()
    assert after["minConfidence"] == 0.4 and after["detectionInterval"] == 500
    assert after["motionDetection"] == {"enabled": True, "sensitivity": 0.9, "minArea": 50}

    # A PUT replaces the camera's own fields: {} makes it follow the global entirely.
    reset = await client.put(f"{BASE}/cameras/{camera}/detection", headers=headers, json={})
    assert reset.status_code == 200
    global_now = (await client.get(f"{BASE}/detection/settings", headers=headers)).json()
    assert reset.json()["settings"] == {"cameraId": camera, **global_now}

    # Another camera is not touched by this one's settings.
    other = await add_device(client, "rtsp://127.0.0.1:8554/other")
    assert (await client.get(f"{BASE}/cameras/{other}/detection", headers=headers)).json() == {
        "cameraId": other, **global_now}


async def test_unknown_camera_and_scopes(client, admin_user):
    headers = bearer(admin_user["token"])
    missing = uuid.uuid4()
    for response in (
        await client.get(f"{BASE}/cameras/{missing}/detection", headers=headers),
        await client.put(f"{BASE}/cameras/{missing}/detection", headers=headers, json={}),
    ):
        assert response.status_code == 404
        error = error_of(response)
        assert error["code"] == "RESOURCE_NOT_FOUND"
        assert error["details"] == {"resourceType": "Camera", "resourceId": str(missing)}
    camera = await add_device(client, "rtsp://127.0.0.1:8554/cam")
    user = await new_user(client)
    assert (await client.get(f"{BASE}/cameras/{camera}/detection",
                             headers=bearer(user["token"]))).status_code == 200
    refused = await client.put(f"{BASE}/cameras/{camera}/detection",
                               headers=bearer(user["token"]), json={"enabled": False})
    assert refused.status_code == 403


BAD: list[tuple[dict[str, Any], str]] = [
    ({"enabled": "yes"}, "enabled"),
    ({"detectionInterval": 99}, "detectionInterval"),
    ({"detectionInterval": 60_001}, "detectionInterval"),
    ({"detectionInterval": 500.5}, "detectionInterval"),
    ({"minConfidence": 1.5}, "minConfidence"),
    ({"minConfidence": -0.1}, "minConfidence"),
    ({"threshold": 1}, "threshold"),
    ({"regions": [{"coordinates": [[0, 0], [1, 1]]}]}, "regions[0].coordinates"),
    ({"regions": [{"coordinates": [[0, 0], [1.2, 0], [1, 1]]}]}, "regions[0].coordinates[1]"),
    ({"regions": [{"coordinates": [[0, 0], [-0.1, 0], [1, 1]]}]}, "regions[0].coordinates[1]"),
    ({"regions": [{"coordinates": [[0, 0], [1, 1], [1, 0], [0, 1]]}]},  # a bow tie
     "regions[0].coordinates"),
    ({"regions": [{"coordinates": [[0, 0], [0.5, 0.5], [1, 1]]}]}, "regions[0].coordinates"),
    ({"regions": [{"coordinates": [[0, 0], [0, 0], [1, 0], [1, 1]]}]}, "regions[0].coordinates"),
    ({"regions": [{"coordinates": [[0, 0, 0], [1, 0], [1, 1]]}]}, "regions[0].coordinates[0]"),
    ({"regions": [{"name": "", "coordinates": FULL_FRAME}]}, "regions[0].name"),
    ({"regions": [{"coordinates": FULL_FRAME, "enabled": 1}]}, "regions[0].enabled"),
    ({"regions": [{"coordinates": FULL_FRAME}] * 17}, "regions"),
    ({"objectTypes": [{"type": "bicycle", "enabled": True}]}, "objectTypes[0].type"),
    ({"objectTypes": [{"type": "person"}, {"type": "person"}]}, "objectTypes[1].type"),
    ({"objectTypes": [{"type": "person", "minConfidence": 2}]}, "objectTypes[0].minConfidence"),
    ({"motionDetection": {"sensitivity": 1.01}}, "motionDetection.sensitivity"),
    ({"motionDetection": {"sensitivity": "high"}}, "motionDetection.sensitivity"),
    ({"motionDetection": {"minArea": 0}}, "motionDetection.minArea"),
    ({"motionDetection": {"minArea": 102_401}}, "motionDetection.minArea"),
    ({"motionDetection": {"minArea": 10.5}}, "motionDetection.minArea"),
    ({"motionDetection": {"enabled": "on"}}, "motionDetection.enabled"),
]


@pytest.mark.parametrize("body, field", BAD)
async def test_bad_values_are_validation_errors_and_change_nothing(client, admin_user, body, field):
    headers = bearer(admin_user["token"])
    camera = await add_device(client, "rtsp://127.0.0.1:8554/cam")
    before = (await client.get(f"{BASE}/detection/settings", headers=headers)).json()
    for path in ("/detection/settings", f"/cameras/{camera}/detection"):
        response = await client.put(f"{BASE}{path}", headers=headers, json=body)
        assert response.status_code == 400, (path, response.text)
        error = error_of(response)
        assert error["code"] == "VALIDATION_ERROR"
        if "field" in error["details"]:  # core's check (msgspec's type checks list `fields`)
            assert error["details"]["field"] == field
        else:
            assert error["details"]["fields"], error
    assert (await client.get(f"{BASE}/detection/settings", headers=headers)).json() == before
    assert (await client.get(f"{BASE}/cameras/{camera}/detection", headers=headers)).json() == {
        "cameraId": camera, **before}


@pytest.mark.parametrize("points", [
    [[0, 0], [1, 0], [1, 1], [0, 1]],
    [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]],
    [[0, 0], [1, 1], [1, 0], [0, 1]],
    [[0, 0], [0.5, 0.5], [1, 1]],
    [[0, 0], [0.5, 0], [0.5, 0.5], [0.25, 0], [0, 0.5]],  # an edge touches another
    [[0.2, 0.2], [0.2, 0.2], [0.8, 0.8]],
    [[0, 0], [0.00001, 0], [0, 0.00001]],
    [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.5, 0.5], [0.1, 0.9]],  # concave: fine
])
def test_core_accepts_exactly_the_polygons_the_media_regions_accept(points):
    try:
        validate_polygon(points)
        media_ok = True
    except InvalidRegionError:
        media_ok = False
    try:
        _polygon(points, "regions[0].coordinates")
        core_ok = True
    except InvalidInput:
        core_ok = False
    assert core_ok == media_ok
