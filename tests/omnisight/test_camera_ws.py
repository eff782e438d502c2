"""`camera_status` on the WebSocket, raised where stream states change: a client on one
`vas api` process hears the camera go online (the media node's transition) and offline (the
stop handled by another API process), through Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.processes import VasProcess, free_port
from tests.omnisight.test_ws import ISO_MS, Api

pytestmark = pytest.mark.slow


@pytest.fixture
def settings_env(settings_env: dict[str, str], backend: str,
                 request: pytest.FixtureRequest) -> dict[str, str]:
    """On PostgreSQL, a database of its own for the processes of each test."""
    if backend == "postgres":
        return {**settings_env, "DATABASE_URL": request.getfixturevalue("fresh_postgres_url")}
    return settings_env


def _start_api(start_process: Callable[..., VasProcess]) -> Api:
    port = free_port()
    return Api(start_process("api", "Application startup complete", VAS_PORT=str(port)), port)


def _camera_status(ws: ClientConnection, camera_id: str, timeout: float = 40.0) -> dict[str, Any]:
    """The next camera_status message about `camera_id` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "camera_status" and message["data"]["cameraId"] == camera_id:
            return dict(message)


def test_camera_status_reaches_a_client_of_another_api_process(
    start_process: Callable[..., VasProcess], media_node: VasProcess, start_camera: Any,
) -> None:
    camera = start_camera(width=320, height=240, fps=15, gop=15)
    listening, acting = _start_api(start_process), _start_api(start_process)
    headers = {"Authorization": f"Bearer {acting.login()}"}
    made = httpx.post(f"{acting.http}/api/v1/cameras", headers=headers, timeout=10,
                      json={"name": "Drive", "rtspUrl": camera.url})
    assert made.status_code == 201, made.text
    camera_id = made.json()["id"]

    with connect(f"{listening.ws}?token={listening.login()}", open_timeout=10) as ws:
        started = httpx.post(f"{acting.http}/api/v1/cameras/{camera_id}/stream/start",
                             headers=headers, timeout=40)
        assert started.status_code == 200, started.text
        online = _camera_status(ws, camera_id)
        assert set(online) == {"type", "data"}
        assert set(online["data"]) == {"cameraId", "status", "timestamp"}
        assert online["data"]["status"] == "online" and ISO_MS.match(online["data"]["timestamp"])

        stopped = httpx.post(f"{acting.http}/api/v1/cameras/{camera_id}/stream/stop",
                             headers=headers, timeout=20)
        assert stopped.status_code == 200, stopped.text
        assert _camera_status(ws, camera_id)["data"]["status"] == "offline"
