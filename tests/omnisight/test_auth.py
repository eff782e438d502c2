"""OmniSight authentication: register, login, refresh rotation and reuse detection, logout,
sessions, throttling, and no anonymous path to admin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
from litestar import Litestar

from api.app import create_app
from core.settings import load_settings
from core.users import ROLE_SCOPES, Role
from tests.conftest import ADMIN_SECRET, bearer, token_for
from tests.omnisight.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    BASE,
    error_of,
    login,
    new_user,
    register,
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_register_answers_201_with_the_documents_body(client):
    response = await register(client, username="user1", email="User1@Example.com",
                              password="securepassword", role="user")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "username", "email", "role", "createdAt"}
    assert (body["username"], body["email"], body["role"]) == ("user1", "user1@example.com", "user")
    uuid.UUID(body["id"])
    assert ISO_MS.match(body["createdAt"]), body["createdAt"]
    assert "securepassword" not in response.text
    # The role defaults to user.
    plain = await register(client)
    assert plain.status_code == 201 and plain.json()["role"] == "user"


async def test_email_and_username_are_unique_regardless_of_case(client):
    first = await register(client, username="Dup-Name", email="dup@example.com")
    assert first.status_code == 201
    same_email = await register(client, username="other-name", email="DUP@example.COM")
    assert same_email.status_code == 409
    error = error_of(same_email)
    assert error["code"] == "CONFLICT" and error["details"] == {"field": "email"}
    same_name = await register(client, username="dup-name", email="fresh@example.com")
    assert same_name.status_code == 409 and error_of(same_name)["details"] == {"field": "username"}


async def test_bad_registrations_are_400_naming_the_field(client):
    cases: list[tuple[dict[str, Any], str]] = [
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "aaaaaaaaaaaa"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"username": "a b"}, "username"),
        ({"username": "ab"}, "username"),
        ({"role": "superuser"}, "role"),
    ]
    for fields, field in cases:
        response = await register(client, **fields)
        assert response.status_code == 400, (fields, response.text)
        error = error_of(response)
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"]["field"] == field, (fields, error)
        if "password" in fields:
            assert fields["password"] not in response.text
    missing = await client.post(f"{BASE}/auth/register", json={"username": "nopass1",
                                                                "email": "n@example.com"})
    assert missing.status_code == 400 and error_of(missing)["details"]["field"] == "password"
    wrong_type = await client.post(f"{BASE}/auth/register", json={
        "username": 5, "email": "n@example.com", "password": "long enough 1"})
    assert wrong_type.status_code == 400 and error_of(wrong_type)["details"]["field"] == "username"
    garbage = await client.post(f"{BASE}/auth/register", content=b"{not json",
                                headers={"content-type": "application/json"})
    assert garbage.status_code == 400 and error_of(garbage)["code"] == "VALIDATION_ERROR"


async def test_nobody_becomes_admin_without_an_admin(client, admin_user, admin_token):
    anonymous = await register(client, role="admin")
    assert anonymous.status_code == 403 and error_of(anonymous)["code"] == "FORBIDDEN"
    user = await new_user(client)
    by_user = await register(client, role="admin", headers=bearer(user["token"]))
    assert by_user.status_code == 403
    bad_token = await register(client, role="admin", headers=bearer("garbage"))
    assert bad_token.status_code == 401 and error_of(bad_token)["code"] == "UNAUTHORIZED"

    by_admin = await register(client, role="admin", headers=bearer(admin_user["token"]))
    assert by_admin.status_code == 201 and by_admin.json()["role"] == "admin"
    by_admin_client = await register(client, role="admin", headers=bearer(admin_token))
    assert by_admin_client.status_code == 201 and by_admin_client.json()["role"] == "admin"
    users = (await client.get(f"{BASE}/users?limit=100", headers=bearer(admin_user["token"]))).json()
    admins = {u["email"] for u in users["users"] if u["role"] == "admin"}
    assert admins == {ADMIN_EMAIL, by_admin.json()["email"], by_admin_client.json()["email"]}


@contextlib.asynccontextmanager
async def _app_with(env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database and Redis, with a different environment."""
    app: Litestar = create_app(load_settings(env))
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    await started.wait()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://vas.test") as http:
            yield http
    finally:
        stop.set()
        await task


async def test_closed_registration_leaves_account_creation_to_admins(settings_env, settings):
    async with _app_with({**settings_env, "VAS_OPEN_REGISTRATION": "false"}) as client:
        anonymous = await register(client)
        assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "UNAUTHORIZED"
        admin = await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
        created = await register(client, headers=bearer(admin["token"]))
        assert created.status_code == 201
        user = await login(client, created.json()["email"], "correct horse 42")
        by_user = await register(client, headers=bearer(user["token"]))
        assert by_user.status_code == 403 and error_of(by_user)["code"] == "FORBIDDEN"
    production = load_settings({**settings_env, "VAS_ENV": "production", "JWT_SECRET_KEY": "k" * 40,
                                "DATABASE_URL": "postgresql://x@127.0.0.1/x",
                                "VAS_CREDENTIALS_KEY": "c" * 40, "VAS_CAMERA_NETWORKS": "any"})
    assert production.auth.open_registration is False
    assert settings.auth.open_registration is True


async def test_login_answers_the_documents_body_with_a_user_token(client, settings):
    created = (await register(client, password="securepassword")).json()
    response = await client.post(f"{BASE}/auth/login", json={
        "email": created["email"].upper(), "password": "securepassword"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "refreshToken", "user"}
    assert body["user"] == {k: created[k] for k in ("id", "username", "email", "role")}
    claims = jwt.decode(body["token"], settings.auth.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == created["id"] and claims["kind"] == "user"
    assert claims["scope"].split() == list(ROLE_SCOPES[Role.USER])
    assert claims["exp"] - claims["iat"] == 3600
    me = (await client.get(f"{BASE}/users/me", headers=bearer(body["token"]))).json()
    assert ISO_MS.match(me["lastLogin"])


async def test_wrong_password_and_unknown_email_are_the_same_401(client):
    created = (await register(client)).json()
    for body in ({"email": created["email"], "password": "wrong password"},
                 {"email": "nobody@example.com", "password": "correct horse 42"}):
        response = await client.post(f"{BASE}/auth/login", json=body)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert error_of(response) == {"code": "UNAUTHORIZED", "message": "Invalid email or password",
                                      "details": {}}


async def test_refresh_rotates_and_a_reused_token_ends_the_session(client):
    user = await new_user(client)
    first = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": user["refreshToken"]})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert set(rotated) == {"token", "refreshToken"}
    assert rotated["refreshToken"] != user["refreshToken"] and rotated["token"] != user["token"]
    assert (await client.get(f"{BASE}/users/me", headers=bearer(rotated["token"]))).status_code == 200

    # The old token again: a replay. The whole session ends, including the new tokens.
    replay = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": user["refreshToken"]})
    assert replay.status_code == 401 and error_of(replay)["code"] == "UNAUTHORIZED"
    assert "already used" in error_of(replay)["message"]
    after = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": rotated["refreshToken"]})
    assert after.status_code == 401
    await asyncio.sleep(2.1)  # the per-process "still active" answer lives 2 s
    me = await client.get(f"{BASE}/users/me", headers=bearer(rotated["token"]))
    assert me.status_code == 401

    for bad in ("garbage", "", "abc.def", uuid.uuid4().hex + ".xyz"):
        response = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": bad})
        assert response.status_code == 401, bad
    missing = await client.post(f"{BASE}/auth/refresh-token", json={})
    assert missing.status_code == 400 and error_of(missing)["details"]["field"] == "refreshToken"


async def test_several_sessions_and_logout_of_one(client):
    user = await new_user(client)
    email = user["user"]["email"]
    laptop = await login(client, email, user["password"])
    phone = await login(client, email, user["password"])
    out = await client.post(f"{BASE}/auth/logout", json={"refreshToken": laptop["refreshToken"]})
    assert out.status_code == 200 and out.json() == {"message": "Logged out successfully"}
    again = await client.post(f"{BASE}/auth/logout", json={"refreshToken": laptop["refreshToken"]})
    assert again.status_code == 200
    refused = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": laptop["refreshToken"]})
    assert refused.status_code == 401
    assert (await client.get(f"{BASE}/users/me", headers=bearer(laptop["token"]))).status_code == 401
    # The other sessions carry on.
    assert (await client.get(f"{BASE}/users/me", headers=bearer(phone["token"]))).status_code == 200
    refreshed = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": phone["refreshToken"]})
    assert refreshed.status_code == 200
    assert (await client.get(f"{BASE}/users/me", headers=bearer(user["token"]))).status_code == 200
    unknown = await client.post(f"{BASE}/auth/logout", json={"refreshToken": "nope"})
    assert unknown.status_code == 401 and error_of(unknown)["code"] == "UNAUTHORIZED"


async def test_failed_logins_are_throttled_per_email(client, settings):
    user = await new_user(client)
    email = user["user"]["email"]
    for attempt in range(settings.auth.max_failed_logins):
        bad = await client.post(f"{BASE}/auth/login", json={
            "email": email.upper() if attempt % 2 else email, "password": "wrong password"})
        assert bad.status_code == 401
    locked = await client.post(f"{BASE}/auth/login", json={"email": email, "password": user["password"]})
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= settings.auth.failed_login_window_s
    error = error_of(locked)
    assert error["code"] == "RATE_LIMITED" and error["details"]["retryAfter"] > 0
    # Other accounts and API clients are not affected.
    assert (await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))["token"]
    client_login = await client.post("/v2/auth/token", json={"client_id": "admin",
                                                             "client_secret": ADMIN_SECRET})
    assert client_login.status_code == 200


async def test_passwords_and_refresh_tokens_never_reach_responses_or_logs(client, admin_token, caplog):
    caplog.set_level(logging.DEBUG)
    password = "hunter2-" + uuid.uuid4().hex
    created = await register(client, password=password)
    body = await login(client, created.json()["email"], password)
    refreshed = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": body["refreshToken"]})
    replay = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": body["refreshToken"]})
    logout = await client.post(f"{BASE}/auth/logout", json={"refreshToken": refreshed.json()["refreshToken"]})
    wrong = await client.post(f"{BASE}/auth/login", json={"email": created.json()["email"],
                                                          "password": password + "x"})
    short = await register(client, password="Sh0rt!")
    listed = await client.get(f"{BASE}/users?limit=100", headers=bearer(admin_token))
    me = await client.get(f"{BASE}/users/me", headers=bearer(body["token"]))
    secrets = [password, body["refreshToken"], refreshed.json()["refreshToken"], "Sh0rt!",
               body["refreshToken"].split(".")[1]]
    for response in (created, replay, logout, wrong, short, listed, me):
        for secret in secrets:
            assert secret not in response.text
    assert "passwordHash" not in listed.text and "argon2" not in listed.text
    assert replay.status_code == 401  # a reuse was detected and logged...
    assert any("rotated refresh token" in r.getMessage() for r in caplog.records)
    for secret in secrets:  # ...without the token
        assert secret not in caplog.text


async def test_api_client_tokens_have_no_user(client, admin_token):
    reader = await token_for(client, admin_token, ["streams:read"])
    for token in (admin_token, reader):
        me = await client.get(f"{BASE}/users/me", headers=bearer(token))
        assert me.status_code == 403 and error_of(me)["code"] == "FORBIDDEN"
    anonymous = await client.get(f"{BASE}/users/me")
    assert anonymous.status_code == 401 and error_of(anonymous)["code"] == "UNAUTHORIZED"
    assert anonymous.headers["www-authenticate"] == "Bearer"


async def test_a_disabled_or_removed_user_is_refused_everywhere(client):
    from core.tables import User, UserSession

    user = await new_user(client)
    user_id = uuid.UUID(user["user"]["id"])
    assert (await client.get("/v2/streams", headers=bearer(user["token"]))).status_code == 200
    await User.update({User.disabled: True}).where(User.id == user_id)
    await asyncio.sleep(2.1)  # the per-process "still active" answer lives 2 s
    for path in (f"{BASE}/users/me", "/v2/streams"):
        response = await client.get(path, headers=bearer(user["token"]))
        assert response.status_code == 401, (path, response.text)
    refresh = await client.post(f"{BASE}/auth/refresh-token", json={"refreshToken": user["refreshToken"]})
    assert refresh.status_code == 401
    assert not await UserSession.exists().where(
        (UserSession.user_id == user_id) & UserSession.revoked_at.is_null())
    relogin = await client.post(f"{BASE}/auth/login", json={"email": user["user"]["email"],
                                                             "password": user["password"]})
    assert relogin.status_code == 401

    other = await new_user(client)
    await User.delete().where(User.id == uuid.UUID(other["user"]["id"]))
    await asyncio.sleep(2.1)
    assert (await client.get(f"{BASE}/users/me", headers=bearer(other["token"]))).status_code == 401
