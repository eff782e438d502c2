"""Secrets never leak: after a broad scenario (API clients and users signing in and
refreshing, a camera with a password validated, streamed, listed, failing with a wrong
password), no camera password, client secret, user password or refresh token appears in any
response body or header the scenario saw, nor in any log line of the API, the worker or the
media node (all at DEBUG), except in the one response that hands the secret out."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.camera.fixtures import StartCamera
from tests.conftest import ADMIN_SECRET, bearer
from tests.vas_fixtures import add_device

# Responses that hand a secret out, once, on purpose.
ISSUERS = {("POST", "/v2/auth/clients"), ("POST", "/v2/auth/token"),
           ("POST", "/v2/auth/token/refresh"), ("POST", "/api/v1/auth/login"),
           ("POST", "/api/v1/auth/refresh-token")}


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    return {**settings_env, "VAS_LOG_LEVEL": "DEBUG"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # logging does not differ
async def test_no_secret_in_any_response_or_log(
    client: httpx.AsyncClient, admin_token: str, start_camera: StartCamera, start_process: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[tuple[str, str, str]] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        seen.append((response.request.method, response.request.url.path,
                     headers + "\n" + response.text))

    client.event_hooks["response"].append(record)
    media_node = start_process("media-node", "registered")
    worker = start_process("worker", "serving queues")
    secrets: dict[str, str] = {"admin client secret": ADMIN_SECRET}
    admin = bearer(admin_token)

    # API clients: create, sign in, refresh, a wrong secret.
    created = (await client.post("/v2/auth/clients", headers=admin, json={
        "client_id": f"c-{uuid.uuid4().hex[:8]}", "scopes": ["streams:read"]})).json()
    secrets["client secret"] = created["client_secret"]
    creds = {"client_id": created["client_id"], "client_secret": created["client_secret"]}
    first = (await client.post("/v2/auth/token", json=creds)).json()
    secrets["client refresh token"] = first["refresh_token"]
    second = (await client.post("/v2/auth/token/refresh",
                                json={"refresh_token": first["refresh_token"]})).json()
    secrets["rotated client refresh token"] = second["refresh_token"]
    reused = await client.post("/v2/auth/token/refresh",
                               json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert (await client.post("/v2/auth/token", json={**creds, "client_secret": "x"})
            ).status_code == 401

    # Users: register, sign in, refresh, a wrong password.
    password = "user-pw-" + uuid.uuid4().hex
    secrets["user password"] = password
    name = f"u{uuid.uuid4().hex[:8]}"
    registered = await client.post("/api/v1/auth/register", json={
        "username": name, "email": f"{name}@example.com", "password": password})
    assert registered.status_code == 201, registered.text
    login = (await client.post("/api/v1/auth/login", json={
        "email": f"{name}@example.com", "password": password})).json()
    secrets["user refresh token"] = login["refreshToken"]
    refreshed = await client.post("/api/v1/auth/refresh-token",
                                  json={"refreshToken": login["refreshToken"]})
    assert refreshed.status_code == 200, refreshed.text
    assert (await client.post("/api/v1/auth/login", json={
        "email": f"{name}@example.com", "password": password + "x"})).status_code == 401
    me = await client.get("/api/v1/users/me", headers=bearer(login["token"]))
    assert me.status_code == 200

    # A camera with a password: validate, save, stream, list, and a wrong password.
    camera_password = "cam-pw-" + uuid.uuid4().hex[:12]
    secrets["camera password"] = camera_password
    camera = start_camera(user="admin", password=camera_password)
    validated = await client.post("/api/v1/devices/validate", json={"rtsp_url": camera.url})
    assert validated.json()["valid"] is True, validated.text
    wrong = camera.url.replace(camera_password, camera_password[::-1])
    secrets["wrong camera password"] = camera_password[::-1]
    refused = await client.post("/api/v1/devices/validate", json={"rtsp_url": wrong})
    assert refused.json()["valid"] is False
    device = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device}/start-stream")
    assert started.status_code == 200, started.text
    await client.get("/api/v1/devices")
    await client.get(f"/api/v1/devices/{device}")
    await client.get(f"/api/v1/devices/{device}/status")
    listed = await client.get("/v2/streams", headers=admin)
    for stream in listed.json()["streams"]:
        await client.get(f"/v2/streams/{stream['id']}", headers=admin)
        await client.get(f"/v2/streams/{stream['id']}/health", headers=admin)
    camera.stop()  # a drop and reconnect attempts, logged by the media node
    stream_path = f"/v2/streams/{listed.json()['streams'][0]['id']}"
    async with asyncio.timeout(20):
        while (await client.get(stream_path, headers=admin)).json()["state"] != "ERROR":
            await asyncio.sleep(0.2)
    await client.post(f"/api/v1/devices/{device}/stop-stream")
    bad_device = await client.post("/api/v1/devices", json={
        "name": "bad", "rtsp_url": wrong.replace("127.0.0.1", "169.254.169.254")})
    assert bad_device.status_code == 400

    texts = [(f"{method} {path}", text) for method, path, text in seen
             if (method, path) not in ISSUERS]
    texts += [("API log", caplog.text), ("media node log", media_node.output),
              ("worker log", worker.output)]
    leaks = [(where, label) for label, secret in secrets.items()
             for form in {secret, quote(secret, safe="")}
             for where, text in texts if form in text]
    assert leaks == []
    assert len(seen) > 20 and "opened" in media_node.output
