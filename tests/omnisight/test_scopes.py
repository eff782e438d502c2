"""The OmniSight scope matrix, written from docs/omnisight.md's tables (not read from the
routes): every scope is tried on every route; a token is admitted only when it holds the
route's scope (or `admin`); no token is 401 and a wrong scope 403, both in the OmniSight
shape. A route the OmniSight family serves but this table does not name fails the test."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from litestar import Litestar

from core.clients import ADMIN_SCOPE, SCOPES
from tests.conftest import bearer, token_for
from tests.omnisight.conftest import error_of

OMNISIGHT = {
    ("GET", "/api/v1/users"): "users:admin",
    ("GET", "/api/v1/system/settings"): "system:read",
    ("PUT", "/api/v1/system/settings"): "system:write",
    ("GET", "/api/v1/system/status"): "system:read",
    ("GET", "/api/v1/cameras"): "cameras:read",
    ("POST", "/api/v1/cameras"): "cameras:write",
    ("GET", "/api/v1/cameras/{camera_id}"): "cameras:read",
    ("PUT", "/api/v1/cameras/{camera_id}"): "cameras:write",
    ("DELETE", "/api/v1/cameras/{camera_id}"): "cameras:write",
    ("GET", "/api/v1/cameras/{camera_id}/status"): "cameras:read",
    # docs/omnisight.md, "Recordings", "Media" and "Live WebRTC".
    ("GET", "/api/v1/recordings"): "recordings:read",
    ("GET", "/api/v1/recordings/{recording_id}"): "recordings:read",
    ("GET", "/api/v1/recordings/{recording_id}/segments"): "recordings:read",
    ("GET", "/api/v1/recordings/{recording_id}/events"): "events:read",
    ("POST", "/api/v1/cameras/{camera_id}/recordings/start"): "recordings:write",
    ("POST", "/api/v1/recordings/{recording_id}/stop"): "recordings:write",
    ("DELETE", "/api/v1/recordings/{recording_id}"): "recordings:write",
    # (also `?format=mp4`, a TS segment remuxed: docs/omnisight.md, "Playable segments")
    ("GET", "/api/v1/media/segments/{segment_id}"): "recordings:read",
    ("GET", "/api/v1/media/thumbnails/segments/{segment_id}"): "recordings:read",
    ("GET", "/api/v1/cameras/{camera_id}/snapshot"): "cameras:read",
    ("GET", "/api/v1/cameras/{camera_id}/live/hls/index.m3u8"): "cameras:read",
    ("GET", "/api/v1/cameras/{camera_id}/live/hls/{segment}"): "cameras:read",
    ("GET", "/api/v1/cameras/{camera_id}/live/webrtc"): "streams:consume",
    ("POST", "/api/v1/cameras/{camera_id}/live/webrtc/{session_id}"): "streams:consume",
    ("DELETE", "/api/v1/cameras/{camera_id}/live/webrtc/{session_id}"): "streams:consume",
    # docs/omnisight.md, "Detection and events".
    ("GET", "/api/v1/detection/settings"): "detection:read",
    ("PUT", "/api/v1/detection/settings"): "detection:write",
    ("GET", "/api/v1/cameras/{camera_id}/detection"): "detection:read",
    ("PUT", "/api/v1/cameras/{camera_id}/detection"): "detection:write",
    ("GET", "/api/v1/events"): "events:read",
    ("POST", "/api/v1/events"): "events:write",
    ("GET", "/api/v1/events/{event_id}"): "events:read",
    ("GET", "/api/v1/cameras/{camera_id}/events"): "events:read",
    ("GET", "/api/v1/media/thumbnails/events/{event_id}"): "events:read",
    ("POST", "/api/v1/cameras/{camera_id}/stream/start"): "streams:write",
    ("POST", "/api/v1/cameras/{camera_id}/stream/stop"): "streams:write",
}
# Any user's token, never an API client's.
USER_ONLY = {("GET", "/api/v1/users/me"), ("PATCH", "/api/v1/users/me/settings")}
PUBLIC = {("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login"),
          ("POST", "/api/v1/auth/refresh-token"), ("POST", "/api/v1/auth/logout")}
OTHER_FAMILIES = ("/api/v1/devices", "/api/v1/ws")


def _served(app: Litestar) -> set[tuple[str, str]]:
    served = set()
    for route in app.routes:
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path).rstrip("/")
        if not path.startswith("/api/v1/") or path.startswith(OTHER_FAMILIES):
            continue
        for handler in getattr(route, "route_handlers", []):
            served |= {(m, path) for m in handler.http_methods if m not in ("OPTIONS", "HEAD")}
    return served


async def _call(client: httpx.AsyncClient, method: str, path: str,
                token: str | None) -> httpx.Response:
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return await client.request(method, path, headers=bearer(token) if token else {}, json=body)


def test_the_table_names_every_omnisight_route(app: Litestar):
    assert _served(app) == set(OMNISIGHT) | USER_ONLY | PUBLIC


async def test_every_omnisight_route_admits_exactly_its_scope(client, admin_token):
    tokens = {scope: await token_for(client, admin_token, [scope]) for scope in SCOPES}
    tokens[ADMIN_SCOPE] = admin_token
    for (method, template), needed in OMNISIGHT.items():
        path = re.sub(r"\{\w+\}", lambda _: str(uuid.uuid4()), template)
        anonymous = await _call(client, method, path, None)
        assert anonymous.status_code == 401, (method, template, anonymous.text)
        assert error_of(anonymous)["code"] == "UNAUTHORIZED"
        for scope, token in tokens.items():
            response = await _call(client, method, path, token)
            if scope in (needed, ADMIN_SCOPE):
                assert response.status_code not in (401, 403), (method, template, scope,
                                                                response.text)
                assert response.status_code < 500, (method, template, scope, response.text)
            else:
                assert response.status_code == 403, (method, template, scope, response.text)
                error = error_of(response)
                assert error["code"] == "FORBIDDEN" and needed in error["message"], (
                    method, template, response.text)
    for method, path in USER_ONLY:
        response = await _call(client, method, path, admin_token)
        assert response.status_code == 403 and error_of(response)["code"] == "FORBIDDEN"
