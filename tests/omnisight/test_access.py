"""One token service for both families; the OmniSight error shape from its one translation
point beside the VAS one; both families in one OpenAPI document with their security."""

from __future__ import annotations

import re
import uuid

import httpx
from litestar import Litestar, Router, get

from api.omnisight.errors import EXCEPTION_HANDLERS
from core.clients import ALL_SCOPES
from core.errors import Conflict, MediaUnavailable, NotFound, RtspTimeout
from tests.conftest import bearer, token_for
from tests.omnisight.conftest import BASE, error_of, new_user


def _omnisight_routes(app: Litestar) -> list[tuple[str, str, str]]:
    routes = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            scope = handler.opt.get("omnisight_scope")
            if scope is None:
                continue
            path = re.sub(r"\{(\w+):\w+\}", lambda _: str(uuid.uuid4()), route.path)
            for method in handler.http_methods:
                routes.append((method, path, scope))
    return routes


async def test_every_guarded_omnisight_route_answers_401_and_403_in_its_shape(app, client, admin_token):
    routes = _omnisight_routes(app)
    assert {(m, p) for m, p, _ in routes} >= {
        ("GET", f"{BASE}/users/me"), ("PATCH", f"{BASE}/users/me/settings"), ("GET", f"{BASE}/users"),
        ("GET", f"{BASE}/system/settings"), ("PUT", f"{BASE}/system/settings")}
    no_scopes = await token_for(client, admin_token, ["bookmarks:write"])
    for method, path, _scope in routes:
        body = {} if method in ("POST", "PUT", "PATCH") else None
        missing = await client.request(method, path, json=body)
        assert missing.status_code == 401, (method, path, missing.text)
        assert error_of(missing)["code"] == "UNAUTHORIZED"
        wrong = await client.request(method, path, json=body, headers=bearer(no_scopes))
        assert wrong.status_code == 403, (method, path, wrong.text)
        assert error_of(wrong)["code"] == "FORBIDDEN"


async def test_user_tokens_work_on_v2_routes_with_their_scopes(client, admin_user):
    user = await new_user(client)
    streams = await client.get("/v2/streams", headers=bearer(user["token"]))
    assert streams.status_code == 200, streams.text
    refused = await client.get("/v2/auth/clients", headers=bearer(user["token"]))
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This operation needs the 'admin' scope"}  # VAS shape
    clip = await client.post(f"/v2/streams/{uuid.uuid4()}/bookmarks", headers=bearer(user["token"]), json={})
    assert clip.status_code == 403 and "bookmarks:write" in clip.json()["detail"]
    # An admin user holds the admin scope.
    assert (await client.get("/v2/auth/clients", headers=bearer(admin_user["token"]))).status_code == 200


async def test_api_client_tokens_work_on_omnisight_routes_with_their_scopes(client, admin_token):
    reader = await token_for(client, admin_token, ["system:read"])
    assert (await client.get(f"{BASE}/system/settings", headers=bearer(reader))).status_code == 200
    refused = await client.put(f"{BASE}/system/settings", headers=bearer(reader), json={})
    assert refused.status_code == 403
    assert error_of(refused) == {"code": "FORBIDDEN", "details": {},
                                 "message": "This operation needs the 'system:write' scope"}
    streams_only = await token_for(client, admin_token, ["streams:read"])
    # A client may hold every scope of both families at once.
    assert await token_for(client, admin_token, list(ALL_SCOPES))
    assert (await client.get(f"{BASE}/system/settings", headers=bearer(streams_only))).status_code == 403


async def test_core_errors_get_the_omnisight_shape_on_omnisight_routes(app: Litestar, client: httpx.AsyncClient):
    camera = str(uuid.uuid4())

    @get("/missing", include_in_schema=False)
    async def missing() -> None:
        raise NotFound("The requested resource was not found",
                       details={"resourceType": "Camera", "resourceId": camera})

    @get("/conflict", include_in_schema=False)
    async def conflict() -> None:
        raise Conflict("Camera is streaming")

    @get("/busy", include_in_schema=False)
    async def busy() -> None:
        raise MediaUnavailable("No media node answered", "rtsp://u:pw@10.0.0.1/x")

    @get("/slow", include_in_schema=False)
    async def slow() -> None:
        raise RtspTimeout("Camera not responding")

    @get("/crash", include_in_schema=False)
    async def crash() -> None:
        raise RuntimeError("secret internals")

    app.register(Router(path=f"{BASE}/test-errors", route_handlers=[missing, conflict, busy, slow, crash],
                        exception_handlers=EXCEPTION_HANDLERS))
    base = f"{BASE}/test-errors"
    response = await client.get(f"{base}/missing")
    assert response.status_code == 404
    assert response.json() == {"error": {
        "code": "RESOURCE_NOT_FOUND", "message": "The requested resource was not found",
        "details": {"resourceType": "Camera", "resourceId": camera}}}
    assert (await client.get(f"{base}/conflict")).json()["error"]["code"] == "CONFLICT"
    unavailable = await client.get(f"{base}/busy")
    assert unavailable.status_code == 503
    assert error_of(unavailable) == {"code": "SERVICE_UNAVAILABLE", "message": "No media node answered",
                                     "details": {"errorCode": "MEDIASOUP_UNAVAILABLE",
                                                 "detail": "rtsp://u:******@10.0.0.1/x"}}
    timeout = await client.get(f"{base}/slow")
    assert timeout.status_code == 504 and error_of(timeout)["code"] == "SERVICE_UNAVAILABLE"
    crashed = await client.get(f"{base}/crash")
    assert crashed.status_code == 500
    assert error_of(crashed) == {"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error",
                                 "details": {}}
    # VAS routes keep their shape.
    assert (await client.get("/v2/streams/not-a-uuid")).json().keys() == {"detail"}


async def test_openapi_shows_both_families_with_their_security(client):
    spec = (await client.get("/schema/openapi.json")).json()
    paths = spec["paths"]
    for path, method, security in (
        (f"{BASE}/users", "get", [{"BearerToken": ["users:admin"]}]),
        (f"{BASE}/users/me", "get", [{"BearerToken": []}]),
        (f"{BASE}/users/me/settings", "patch", [{"BearerToken": []}]),
        (f"{BASE}/system/settings", "get", [{"BearerToken": ["system:read"]}]),
        (f"{BASE}/system/settings", "put", [{"BearerToken": ["system:write"]}]),
        (f"{BASE}/auth/register", "post", [{}, {"BearerToken": ["users:admin"]}]),
        ("/v2/streams", "get", [{"BearerToken": ["streams:read"]}]),
    ):
        assert paths[path][method]["security"] == security, (path, method)
    for path in ("/auth/login", "/auth/refresh-token", "/auth/logout"):
        assert paths[f"{BASE}{path}"]["post"].get("security") in ([], None)
        assert paths[f"{BASE}{path}"]["post"]["tags"] == ["OmniSight: authentication"]
    assert paths[f"{BASE}/system/settings"]["put"]["tags"] == ["OmniSight: system"]
    assert paths[f"{BASE}/users/me"]["get"]["tags"] == ["OmniSight: users"]
    assert "/api/v1/devices" in paths
    register_schema = paths[f"{BASE}/auth/register"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert register_schema
