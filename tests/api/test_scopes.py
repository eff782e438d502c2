"""The scope matrix, written from the guide (§2.4's scopes, §3's routes), not read from the
routes themselves: for every route, a token with each scope in turn is admitted only when it
holds the route's scope (or `admin`); no token is 401, a wrong scope 403. A route the app
serves but this table does not name fails the test, so a new route cannot be forgotten."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar

from core.clients import ADMIN_SCOPE, SCOPES
from tests.conftest import ADMIN_SECRET, bearer, token_for

# §2.4: streams:read lists and views streams; streams:write creates, updates, deletes them
# (V1 start/stop/validate/device changes included); streams:consume attaches and detaches
# WebRTC consumers; snapshots:* and bookmarks:* read (and download) or write their own kind.
GUIDE_V2 = {
    ("GET", "/v2/streams"): "streams:read",
    ("POST", "/v2/streams"): "streams:write",
    ("GET", "/v2/streams/{stream_id}"): "streams:read",
    ("DELETE", "/v2/streams/{stream_id}"): "streams:write",
    ("GET", "/v2/streams/{stream_id}/health"): "streams:read",
    ("GET", "/v2/streams/{stream_id}/router-capabilities"): "streams:read",
    ("GET", "/v2/streams/{stream_id}/hls/playlist.m3u8"): "streams:read",
    ("GET", "/v2/streams/{stream_id}/hls/{segment}"): "streams:read",
    ("POST", "/v2/streams/{stream_id}/consume"): "streams:consume",
    ("POST", "/v2/streams/{stream_id}/consumers/{consumer_id}/connect"): "streams:consume",
    ("POST", "/v2/streams/{stream_id}/consumers/{consumer_id}/ice-candidate"): "streams:consume",
    ("GET", "/v2/streams/{stream_id}/consumers"): "streams:read",
    ("DELETE", "/v2/streams/{stream_id}/consumers/{consumer_id}"): "streams:consume",
    ("POST", "/v2/streams/{stream_id}/whep"): "streams:consume",
    ("PATCH", "/v2/streams/{stream_id}/whep/{session_id}"): "streams:consume",
    ("DELETE", "/v2/streams/{stream_id}/whep/{session_id}"): "streams:consume",
    ("POST", "/v2/streams/{stream_id}/snapshots"): "snapshots:write",
    ("GET", "/v2/snapshots"): "snapshots:read",
    ("GET", "/v2/snapshots/{snapshot_id}"): "snapshots:read",
    ("GET", "/v2/snapshots/{snapshot_id}/image"): "snapshots:read",
    ("DELETE", "/v2/snapshots/{snapshot_id}"): "snapshots:write",
    ("POST", "/v2/streams/{stream_id}/bookmarks"): "bookmarks:write",
    ("GET", "/v2/bookmarks"): "bookmarks:read",
    ("GET", "/v2/bookmarks/{bookmark_id}"): "bookmarks:read",
    ("PUT", "/v2/bookmarks/{bookmark_id}"): "bookmarks:write",
    ("DELETE", "/v2/bookmarks/{bookmark_id}"): "bookmarks:write",
    ("GET", "/v2/bookmarks/{bookmark_id}/video"): "bookmarks:read",
    ("GET", "/v2/bookmarks/{bookmark_id}/thumbnail"): "bookmarks:read",
    # Beyond the guide's seven scopes (docs/decisions.md): client management and nodes.
    ("GET", "/v2/auth/clients"): ADMIN_SCOPE,
    ("POST", "/v2/auth/clients"): ADMIN_SCOPE,
    ("DELETE", "/v2/auth/clients/{client_id}"): ADMIN_SCOPE,
    ("GET", "/v2/nodes"): ADMIN_SCOPE,
}
# §3.2 with VAS_V1_AUTH=required (open by default, §2.5). One change from the guide, a
# documented decision (docs/omnisight.md, "Scopes of cameras"): device writes need the
# OmniSight `cameras:write`, as the camera routes do, since OmniSight users hold
# streams:write to start and stop streams; start/stop/validate keep streams:write.
GUIDE_V1 = {
    ("GET", "/api/v1/devices"): "streams:read",
    ("POST", "/api/v1/devices"): "cameras:write",
    ("GET", "/api/v1/devices/{device_id}"): "streams:read",
    ("PUT", "/api/v1/devices/{device_id}"): "cameras:write",
    ("DELETE", "/api/v1/devices/{device_id}"): "cameras:write",
    ("GET", "/api/v1/devices/{device_id}/status"): "streams:read",
    ("POST", "/api/v1/devices/{device_id}/start-stream"): "streams:write",
    ("POST", "/api/v1/devices/{device_id}/stop-stream"): "streams:write",
    ("POST", "/api/v1/devices/validate"): "streams:write",
}
PUBLIC = {"/v2/auth/token", "/v2/auth/token/refresh", "/v2/health/live", "/v2/health/ready"}


def _served(app: Litestar, prefix: str) -> set[tuple[str, str]]:
    served = set()
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        if not path.startswith(prefix) or path in PUBLIC:
            continue
        for handler in getattr(route, "route_handlers", []):
            served |= {(m, path) for m in handler.http_methods if m not in ("OPTIONS", "HEAD")}
    return served


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "no-such-client" if m[1] == "client_id"
                  else str(uuid.uuid4()), path)


async def _call(client: httpx.AsyncClient, method: str, path: str,
                token: str | None) -> httpx.Response:
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, path, headers=bearer(token) if token else {}, json=body)


async def _check_matrix(client: httpx.AsyncClient, admin_token: str,
                        table: dict[tuple[str, str], str]) -> None:
    tokens = {scope: await token_for(client, admin_token, [scope]) for scope in SCOPES}
    tokens[ADMIN_SCOPE] = admin_token
    for (method, template), needed in table.items():
        path = _concrete(template)
        anonymous = await _call(client, method, path, None)
        assert anonymous.status_code == 401, (method, template, anonymous.text)
        assert isinstance(anonymous.json()["detail"], str)
        for scope, token in tokens.items():
            response = await _call(client, method, path, token)
            if scope in (needed, ADMIN_SCOPE):
                assert response.status_code not in (401, 403), (method, template, scope,
                                                                response.text)
                assert response.status_code < 500, (method, template, scope, response.text)
            else:
                assert response.status_code == 403, (method, template, scope, response.text)
                assert needed in response.json()["detail"], (method, template, response.text)


def test_the_table_names_every_route(app: Litestar):
    assert _served(app, "/v2/") == set(GUIDE_V2)
    assert _served(app, "/api/v1/devices") == set(GUIDE_V1)


async def test_every_v2_route_admits_exactly_its_scope(client, admin_token):
    await _check_matrix(client, admin_token, GUIDE_V2)


async def test_v1_routes_are_open_by_default(client: httpx.AsyncClient):
    assert (await client.get("/api/v1/devices")).status_code == 200
    created = await client.post("/api/v1/devices", json={"name": "x",
                                                         "rtsp_url": "rtsp://127.0.0.1:1/x"})
    assert created.status_code == 201


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_v1_auth_required_puts_every_device_route_behind_its_scope(settings_env):
    from api.app import create_app
    from core.settings import load_settings

    app = create_app(load_settings({**settings_env, "VAS_V1_AUTH": "required"}))

    async def run() -> None:
        # Enter and leave the lifespan in one task: it holds anyio cancel scopes.
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://vas.test") as http:
                admin = (await http.post("/v2/auth/token", json={
                    "client_id": "admin", "client_secret": ADMIN_SECRET})).json()["access_token"]
                await _check_matrix(http, admin, GUIDE_V1)

    await asyncio.create_task(run())
