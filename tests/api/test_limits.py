"""Bounded requests: every body over 1 MiB is 413 in its family's shape, and pages are
capped by `limit`."""

from __future__ import annotations

import httpx
import pytest

from api.app import MAX_BODY_BYTES
from tests.conftest import bearer

BIG = {"name": "x" * (MAX_BODY_BYTES + 1)}


@pytest.mark.parametrize("path, family", [
    ("/v2/streams", "vas"),
    ("/v2/auth/token", "vas"),
    ("/api/v1/devices", "vas"),
    ("/api/v1/auth/login", "omnisight"),
    ("/api/v1/auth/register", "omnisight"),
])
async def test_bodies_over_the_limit_are_413_before_anything_else(
    client: httpx.AsyncClient, admin_token: str, path: str, family: str
) -> None:
    response = await client.post(path, json=BIG, headers=bearer(admin_token))
    assert response.status_code == 413, response.text
    body = response.json()
    if family == "omnisight":
        assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    else:
        assert isinstance(body["detail"], str)


async def test_chunked_bodies_are_counted_too(client: httpx.AsyncClient,
                                              admin_token: str) -> None:
    async def chunks():  # no Content-Length: the server must count
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    response = await client.post("/api/v1/devices", content=chunks(),
                                 headers={**bearer(admin_token),
                                          "Content-Type": "application/json"})
    assert response.status_code == 413, response.text


@pytest.mark.parametrize("path", ["/v2/streams", "/v2/snapshots", "/v2/bookmarks",
                                  "/api/v1/cameras", "/api/v1/events", "/api/v1/recordings",
                                  "/api/v1/users"])
async def test_pages_are_capped(client: httpx.AsyncClient, admin_token: str, path: str) -> None:
    too_many = await client.get(f"{path}?limit=101", headers=bearer(admin_token))
    assert too_many.status_code == 400, too_many.text
    capped = await client.get(f"{path}?limit=100", headers=bearer(admin_token))
    assert capped.status_code == 200
