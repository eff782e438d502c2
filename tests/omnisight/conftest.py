"""OmniSight fixtures: the bootstrap admin user's credentials, sign-in helpers."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

ADMIN_EMAIL = "root@omnisight.test"
ADMIN_PASSWORD = "admin-pass-" + uuid.uuid4().hex[:12]
BASE = "/api/v1"


@pytest.fixture
def settings_env(settings_env: dict[str, str]) -> dict[str, str]:
    """The shared environment plus a known bootstrap admin user."""
    return {**settings_env, "VAS_ADMIN_EMAIL": ADMIN_EMAIL, "VAS_ADMIN_PASSWORD": ADMIN_PASSWORD}


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The OmniSight error object of a response, its shape checked."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and isinstance(body["error"]["details"], dict)
    return dict(body["error"])


async def register(client: httpx.AsyncClient, *, password: str = "correct horse 42",
                   role: str | None = None, headers: dict[str, str] | None = None,
                   **fields: str) -> httpx.Response:
    name = fields.pop("username", f"user-{uuid.uuid4().hex[:8]}")
    body: dict[str, Any] = {"username": name, "email": fields.pop("email", f"{name}@example.com"),
                            "password": password}
    if role is not None:
        body["role"] = role
    return await client.post(f"{BASE}/auth/register", json=body, headers=headers or {})


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    response = await client.post(f"{BASE}/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def new_user(client: httpx.AsyncClient, password: str = "correct horse 42") -> dict[str, Any]:
    """Register a `user` and sign in; returns the login body plus `password`."""
    created = await register(client, password=password)
    assert created.status_code == 201, created.text
    body = await login(client, created.json()["email"], password)
    return {**body, "password": password}


@pytest.fixture
async def admin_user(client: httpx.AsyncClient) -> dict[str, Any]:
    """The bootstrap admin user, signed in."""
    return await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
