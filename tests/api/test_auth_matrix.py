"""Auth on every route, generated from the OpenAPI document of both API families.

Every operation whose security names the bearer scheme is called with no token, a tampered
token, an expired one, an `alg: none` one and one signed with another key (401 each, in the
family's error shape), and with a valid token lacking its scope (403). An operation the
document leaves without security must be one of the named public ones, and every route the
app serves must be in the document, so a new route cannot be forgotten."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from litestar import Litestar

from core.clock import utcnow
from core.tokens import ALGORITHM, ISSUER
from tests.conftest import bearer, token_for

# Public on purpose: signing in and refreshing, health probes, signing out with a refresh
# token. Registration is open or admin-only (VAS_OPEN_REGISTRATION), documented as optional.
PUBLIC = {
    ("POST", "/v2/auth/token"), ("POST", "/v2/auth/token/refresh"),
    ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"),
    ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh-token"),
    ("POST", "/api/v1/auth/logout"),
}
OPTIONAL = {("POST", "/api/v1/auth/register")}
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    # The V1 device routes are open by default (guide §2.5); with this they need a token.
    return {**settings_env, "VAS_V1_AUTH": "required"}


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]] | None]:
    return {(method.upper(), path): operation.get("security")
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS}


def _scopes(security: list[dict[str, Any]]) -> set[str]:
    return {scope for requirement in security for scopes in requirement.values()
            for scope in scopes}


def _is_v1_device(path: str) -> bool:
    return path.startswith("/api/v1/devices")


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "no-such-client" if m[1] == "client_id"
                  else str(uuid.uuid4()), path)


def _claims(**changes: Any) -> dict[str, Any]:
    now = utcnow()
    claims: dict[str, Any] = {"iss": ISSUER, "sub": "admin", "typ": "access", "kind": "client",
                              "scope": "admin", "iat": now, "nbf": now,
                              "exp": now + timedelta(minutes=5), "jti": uuid.uuid4().hex}
    return {**claims, **changes}


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, default=lambda d: int(d.timestamp())).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bad_tokens(secret: str, valid_admin: str) -> dict[str, str]:
    header, payload, signature = valid_admin.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    now = utcnow()
    return {
        "tampered": f"{header}.{_b64(claims)}.{signature}",
        "expired": jwt.encode(_claims(iat=now - timedelta(hours=2), nbf=now - timedelta(hours=2),
                                      exp=now - timedelta(hours=1)), secret, algorithm=ALGORITHM),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
        "other key": jwt.encode(_claims(), "another-key-" + uuid.uuid4().hex,
                                algorithm=ALGORITHM),
        "garbage": "not.a.token",
    }


def _assert_unauthorized(response: httpx.Response, path: str, case: str) -> None:
    assert response.status_code == 401, (path, case, response.status_code, response.text)
    body = response.json()
    if path.startswith("/api/v1/") and not _is_v1_device(path):
        assert body["error"]["code"] == "UNAUTHORIZED", (path, case, body)
    else:
        assert isinstance(body["detail"], str), (path, case, body)


async def _call(client: httpx.AsyncClient, method: str, path: str,
                headers: dict[str, str]) -> httpx.Response:
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, path, headers=headers, json=body)


async def test_every_documented_route_refuses_bad_tokens_and_missing_scopes(
    app: Litestar, client: httpx.AsyncClient, admin_token: str
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    operations = _operations(document)

    # Every route the app serves under both families is in the document.
    served = set()
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        if path.startswith(("/v2/", "/api/v1/")):
            for handler in getattr(route, "route_handlers", []):
                served |= {(m, path) for m in getattr(handler, "http_methods", ())
                           if m not in ("OPTIONS", "HEAD")}
    assert served - set(operations) == set(), "routes missing from the OpenAPI document"

    unguarded = {op for op, security in operations.items() if not security}
    assert unguarded == PUBLIC, "a route without a security requirement must be public on purpose"

    bad = _bad_tokens(app.state.services.settings.auth.jwt_secret, admin_token)
    lacking = {scope: await token_for(client, admin_token, [scope])
               for scope in ("streams:read", "bookmarks:read")}
    checked = 0
    for (method, template), security in sorted(operations.items()):
        if (method, template) in PUBLIC | OPTIONAL:
            continue
        assert security, (method, template)
        if {} in security:
            assert _is_v1_device(template), (method, template, "optional auth is only V1's")
        path = _concrete(template)
        _assert_unauthorized(await _call(client, method, path, {}), template, "no token")
        for case, token in bad.items():
            _assert_unauthorized(await _call(client, method, path, bearer(token)), template, case)
        needed = _scopes(security)
        if needed:
            other = "bookmarks:read" if "streams:read" in needed else "streams:read"
            response = await _call(client, method, path, bearer(lacking[other]))
            assert response.status_code == 403, (method, template, response.text)
        checked += 1
    assert checked == len(operations) - len(PUBLIC | OPTIONAL) > 40
