"""Every V2 route, from the app's own route table: 401 without a token, 403 without its
scope, admitted with it. A route added later is covered without editing this test."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from litestar import Litestar

from core.clients import ADMIN_SCOPE, SCOPES
from tests.conftest import bearer, token_for


def _scoped_routes(app: Litestar) -> list[tuple[str, str, str]]:
    routes = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            scope = handler.opt.get("scope")
            if scope is None or handler.opt.get("v1"):
                continue
            path = re.sub(r"\{(\w+):\w+\}", lambda m: str(uuid.uuid4()) if m[1] != "client_id"
                          else "no-such-client", route.path)
            for method in handler.http_methods:
                routes.append((method, path, scope))
    return routes


async def _call(client: httpx.AsyncClient, method: str, path: str, token: str | None) -> httpx.Response:
    headers = bearer(token) if token else {}
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, path, headers=headers, json=body)


async def test_every_v2_route_is_scoped(app: Litestar, client: httpx.AsyncClient, admin_token: str):
    routes = _scoped_routes(app)
    v2_paths = {path for route in app.routes for path in [route.path] if path.startswith("/v2/")}
    open_paths = {"/v2/health/live", "/v2/health/ready", "/v2/auth/token", "/v2/auth/token/refresh"}
    covered = {re.sub(r"[0-9a-f-]{36}|no-such-client", "X", p) for _, p, _ in routes}
    expected = {re.sub(r"\{\w+:\w+\}", "X", p) for p in v2_paths - open_paths}
    assert expected <= covered, f"V2 routes without a scope: {expected - covered}"
    assert len(routes) >= 8

    tokens = {scope: await token_for(client, admin_token, [scope]) for scope in SCOPES}
    for method, path, scope in routes:
        missing = await _call(client, method, path, None)
        assert missing.status_code == 401, (method, path, missing.text)
        assert isinstance(missing.json()["detail"], str)

        others = [s for s in SCOPES if s != scope]
        wrong = await _call(client, method, path, tokens[others[0]])
        assert wrong.status_code == 403, (method, path, wrong.text)
        assert scope in wrong.json()["detail"]

        if scope == ADMIN_SCOPE:
            allowed = await _call(client, method, path, admin_token)
        else:
            allowed = await _call(client, method, path, tokens[scope])
        assert allowed.status_code not in (401, 403, 500), (method, path, allowed.text)


async def test_v1_routes_are_open_by_default(client: httpx.AsyncClient):
    assert (await client.get("/api/v1/devices")).status_code == 200


async def test_v1_auth_required_puts_devices_behind_jwt(settings_env, backend):
    from api.app import create_app
    from core.settings import load_settings
    from tests.conftest import ADMIN_SECRET

    settings = load_settings({**settings_env, "VAS_V1_AUTH": "required"})
    app = create_app(settings)
    # Each request below needs the app started: run it inside the lifespan's own task.
    import asyncio

    result: dict[str, int] = {}

    async def run() -> None:
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://vas.test") as http:
                result["anonymous"] = (await http.get("/api/v1/devices")).status_code
                token = (await http.post("/v2/auth/token", json={
                    "client_id": "admin", "client_secret": ADMIN_SECRET})).json()["access_token"]
                result["admin"] = (await http.get("/api/v1/devices", headers=bearer(token))).status_code
                created = await http.post("/api/v1/devices", json={
                    "name": "x", "rtsp_url": "rtsp://127.0.0.1:1/x"})
                result["anonymous_create"] = created.status_code

    await asyncio.create_task(run())
    assert result == {"anonymous": 401, "admin": 200, "anonymous_create": 401}
