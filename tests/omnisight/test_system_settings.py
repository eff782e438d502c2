"""OmniSight system settings: GET/PUT, validation of every value, recordingsPath read-only."""

from __future__ import annotations

from typing import Any

import pytest

from core.system_settings import SystemSettingsService
from tests.conftest import bearer
from tests.omnisight.conftest import BASE, error_of, new_user

DOC_PUT = {
    "storage": {"maxUsage": 80, "retentionDays": 14, "autoCleanup": True},
    "notifications": {"email": {"enabled": True,
                                "recipients": ["admin@example.com", "user@example.com"]}},
}


async def test_get_shows_the_documents_shape_with_the_defaults(client, settings):
    user = await new_user(client)
    response = await client.get(f"{BASE}/system/settings", headers=bearer(user["token"]))
    assert response.status_code == 200
    assert response.json() == {
        "storage": {
            "recordingsPath": str(settings.media.recordings_dir(settings.server.data_dir)),
            "maxUsage": 90, "retentionDays": 7, "autoCleanup": True,
        },
        "notifications": {"email": {"enabled": False, "recipients": []}, "push": {"enabled": False}},
        "detection": {"enabled": True,
                      "defaultSettings": {"detectionInterval": 1000, "minConfidence": 0.6}},
        "recording": {"enabled": True, "defaultSegmentDuration": 600, "defaultFormat": "mp4"},
    }
    assert (await client.get(f"{BASE}/system/settings")).status_code == 401


async def test_put_merges_the_given_sections_and_every_process_sees_them(client, admin_user, settings):
    headers = bearer(admin_user["token"])
    before = (await client.get(f"{BASE}/system/settings", headers=headers)).json()
    response = await client.put(f"{BASE}/system/settings", headers=headers, json=DOC_PUT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"message", "settings"}
    assert body["message"] == "System settings updated successfully"
    expected = {**before,
                "storage": {**before["storage"], "maxUsage": 80, "retentionDays": 14},
                "notifications": {"email": DOC_PUT["notifications"]["email"],
                                  "push": {"enabled": False}}}
    assert body["settings"] == expected
    assert (await client.get(f"{BASE}/system/settings", headers=headers)).json() == expected

    partial = await client.put(f"{BASE}/system/settings", headers=headers, json={
        "storage": {"retentionDays": 3},
        "detection": {"defaultSettings": {"minConfidence": 0.75}},
        "recording": {"defaultFormat": "ts", "defaultSegmentDuration": 60}})
    assert partial.status_code == 200, partial.text
    stored = partial.json()["settings"]
    assert stored["storage"]["maxUsage"] == 80 and stored["storage"]["retentionDays"] == 3
    assert stored["detection"] == {"enabled": True, "defaultSettings": {
        "detectionInterval": 1000, "minConfidence": 0.75}}

    # A fresh reader (what a worker or media node builds) sees the stored values, typed.
    typed = await SystemSettingsService(settings.media.recordings_dir(settings.server.data_dir)).get()
    assert typed.storage.max_usage == 80 and typed.storage.retention_days == 3
    assert typed.storage.auto_cleanup is True
    assert typed.notifications.email_recipients == ("admin@example.com", "user@example.com")
    assert typed.detection.min_confidence == 0.75 and typed.detection.detection_interval_ms == 1000
    assert typed.recording.default_format == "ts" and typed.recording.default_segment_duration_s == 60
    assert typed.as_document() == stored


@pytest.mark.parametrize("body, field", [
    ({"storage": {"maxUsage": 0}}, "storage.maxUsage"),
    ({"storage": {"maxUsage": 101}}, "storage.maxUsage"),
    ({"storage": {"maxUsage": "90"}}, "storage.maxUsage"),
    ({"storage": {"maxUsage": 50.5}}, "storage.maxUsage"),
    ({"storage": {"retentionDays": 0}}, "storage.retentionDays"),
    ({"storage": {"retentionDays": 3651}}, "storage.retentionDays"),
    ({"storage": {"autoCleanup": "yes"}}, "storage.autoCleanup"),
    ({"storage": {"quota": 1}}, "storage.quota"),
    ({"storage": 5}, "storage"),
    ({"notifications": {"email": {"recipients": ["not-an-address"]}}},
     "notifications.email.recipients"),
    ({"notifications": {"email": {"recipients": [f"u{i}@example.com" for i in range(51)]}}},
     "notifications.email.recipients"),
    ({"notifications": {"push": {"enabled": 1}}}, "notifications.push.enabled"),
    ({"detection": {"defaultSettings": {"detectionInterval": 50}}},
     "detection.defaultSettings.detectionInterval"),
    ({"detection": {"defaultSettings": {"minConfidence": 1.5}}},
     "detection.defaultSettings.minConfidence"),
    ({"detection": {"defaultSettings": {"minConfidence": -0.1}}},
     "detection.defaultSettings.minConfidence"),
    ({"recording": {"defaultSegmentDuration": 5}}, "recording.defaultSegmentDuration"),
    ({"recording": {"defaultFormat": "avi"}}, "recording.defaultFormat"),
    ({"cameras": {}}, "cameras"),
])
async def test_every_value_is_validated(client, admin_user, body: dict[str, Any], field: str):
    headers = bearer(admin_user["token"])
    before = (await client.get(f"{BASE}/system/settings", headers=headers)).json()
    # A valid change beside the bad one must not be applied either.
    response = await client.put(f"{BASE}/system/settings", headers=headers,
                                json={**{"recording": {"enabled": False}}, **body})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR" and error["details"]["field"] == field, error
    assert (await client.get(f"{BASE}/system/settings", headers=headers)).json() == before


async def test_recordings_path_is_read_only(client, admin_user, settings):
    headers = bearer(admin_user["token"])
    real = str(settings.media.recordings_dir(settings.server.data_dir))
    moved = await client.put(f"{BASE}/system/settings", headers=headers,
                             json={"storage": {"recordingsPath": "/tmp/elsewhere", "maxUsage": 70}})
    assert moved.status_code == 400
    error = error_of(moved)
    assert error["details"] == {"field": "storage.recordingsPath"} and "read-only" in error["message"]
    same = await client.put(f"{BASE}/system/settings", headers=headers,
                            json={"storage": {"recordingsPath": real, "maxUsage": 70}})
    assert same.status_code == 200
    assert same.json()["settings"]["storage"]["recordingsPath"] == real
    assert same.json()["settings"]["storage"]["maxUsage"] == 70


async def test_only_admins_change_settings(client, admin_token):
    user = await new_user(client)
    refused = await client.put(f"{BASE}/system/settings", headers=bearer(user["token"]), json=DOC_PUT)
    assert refused.status_code == 403 and error_of(refused)["code"] == "FORBIDDEN"
    assert (await client.put(f"{BASE}/system/settings", json=DOC_PUT)).status_code == 401
    by_client = await client.put(f"{BASE}/system/settings", headers=bearer(admin_token), json=DOC_PUT)
    assert by_client.status_code == 200
