"""The camera URL guard on the V1 device routes: create, update, validate and start refuse
with 400 and the reason, and nothing connects to the refused address."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core.credentials import CredentialBox
from core.devices import DeviceChanges, DeviceService
from tests.camera import SilentRtspServer
from tests.conftest import bearer


@pytest.fixture
def listener() -> Iterator[SilentRtspServer]:
    """A socket that counts the connections it receives; it stands in for the API's port."""
    with SilentRtspServer() as server:
        yield server


@pytest.fixture
def settings_env(settings_env: dict[str, str], listener: SilentRtspServer) -> dict[str, str]:
    # The listener's port is the API's own port: a camera URL naming it must be refused.
    return {**settings_env, "VAS_PORT": str(listener.port),
            "VAS_CAMERA_NETWORKS": "10.20.0.0/16,127.0.0.0/8"}


REFUSED = [
    ("rtsp://169.254.169.254/latest/meta-data", "link-local"),
    ("rtsp://224.0.0.251:554/s", "multicast"),
    ("rtsp://0.0.0.0:554/s", "unspecified"),
    ("rtsp://192.0.2.10:554/s", "outside VAS_CAMERA_NETWORKS"),
    ("rtsp://camera.invalid/s", "does not resolve"),
]


def _refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]


async def test_create_update_and_validate_refuse_with_the_reason(
    client: httpx.AsyncClient, admin_token: str, listener: SilentRtspServer
) -> None:
    headers = bearer(admin_token)
    own_port = (f"rtsp://admin:pw@127.0.0.1:{listener.port}/cam", "own ports")
    for url, reason in [*REFUSED, own_port]:
        _refused(await client.post("/api/v1/devices", json={"name": "c", "rtsp_url": url},
                                   headers=headers), reason)
        _refused(await client.post("/api/v1/devices/validate", json={"rtsp_url": url},
                                   headers=headers), reason)
    created = await client.post("/api/v1/devices", json={"name": "c",
                                                          "rtsp_url": "rtsp://10.20.1.2/s"},
                                headers=headers)
    assert created.status_code == 201, created.text
    device = created.json()["id"]
    for url, reason in [*REFUSED, own_port]:
        _refused(await client.put(f"/api/v1/devices/{device}", json={"rtsp_url": url},
                                  headers=headers), reason)
    kept = await client.get(f"/api/v1/devices/{device}", headers=headers)
    assert kept.json()["rtsp_url"] == "rtsp://10.20.1.2/s"
    assert "pw" not in (await client.post("/api/v1/devices/validate", json={
        "rtsp_url": own_port[0]}, headers=headers)).text
    assert listener.connection_count == 0, "a refused URL is never connected to"


async def test_start_refuses_a_stored_url_the_policy_no_longer_allows(
    app, client: httpx.AsyncClient, admin_token: str, listener: SilentRtspServer
) -> None:
    """A camera saved before the policy changed is checked again when it is started."""
    unguarded = DeviceService(CredentialBox(app.state.services.settings.auth.credentials_key))
    device = await unguarded.create(DeviceChanges(
        name="old", rtsp_url=f"rtsp://127.0.0.1:{listener.port}/cam"))
    response = await client.post(f"/api/v1/devices/{device.id}/start-stream",
                                 headers=bearer(admin_token))
    _refused(response, "own ports")
    assert listener.connection_count == 0
    streams = await client.get("/v2/streams", headers=bearer(admin_token))
    assert streams.json()["pagination"]["total"] == 0
