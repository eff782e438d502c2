"""Guide §2 and §3.1: clients, tokens, refresh rotation, refusal of bad tokens, throttling."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import jwt

from core.tokens import issue_access_token
from tests.conftest import ADMIN_SECRET, bearer, token_for

SCOPES = ["streams:read", "streams:consume", "bookmarks:write", "snapshots:write"]


async def _register(client: httpx.AsyncClient, admin_token: str, scopes: list[str]) -> dict[str, Any]:
    response = await client.post(
        "/v2/auth/clients", json={"client_id": f"ruth-{uuid.uuid4().hex[:8]}", "scopes": scopes},
        headers=bearer(admin_token),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_client_registration_and_token_have_the_guide_shapes(client, admin_token):
    created = await _register(client, admin_token, SCOPES)
    assert set(created) == {"client_id", "client_secret", "scopes", "created_at"}
    assert created["scopes"] == SCOPES
    assert created["created_at"].endswith("Z")

    issued = await client.post("/v2/auth/token", json={
        "client_id": created["client_id"], "client_secret": created["client_secret"]})
    assert issued.status_code == 200
    body = issued.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scopes"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scopes"] == SCOPES
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["sub"] == created["client_id"]


async def test_secret_is_shown_once_and_stored_only_as_a_salted_hash(client, admin_token):
    created = await _register(client, admin_token, ["streams:read"])
    listed = await client.get("/v2/auth/clients", headers=bearer(admin_token))
    assert listed.status_code == 200
    assert created["client_secret"] not in listed.text
    entry = next(c for c in listed.json()["clients"] if c["client_id"] == created["client_id"])
    assert set(entry) == {"client_id", "scopes", "created_at"}

    from core.tables import ApiClient

    rows = await ApiClient.select(ApiClient.client_id, ApiClient.secret_hash)
    stored = next(r["secret_hash"] for r in rows if r["client_id"] == created["client_id"])
    assert created["client_secret"] not in stored
    assert stored.startswith("$argon2id$")
    other = next(r["secret_hash"] for r in rows if r["client_id"] == "admin")
    assert stored.split("$")[4] != other.split("$")[4], "each hash has its own salt"


async def test_a_scrypt_secret_of_an_earlier_release_still_signs_in_and_is_rehashed(
    client, admin_token
):
    from core.credentials import legacy_scrypt_hash
    from core.tables import ApiClient

    created = await _register(client, admin_token, ["streams:read"])
    creds = {"client_id": created["client_id"], "client_secret": created["client_secret"]}
    await ApiClient.update({ApiClient.secret_hash: legacy_scrypt_hash(created["client_secret"])}
                           ).where(ApiClient.client_id == created["client_id"])

    wrong = await client.post("/v2/auth/token", json={**creds, "client_secret": "nope"})
    assert wrong.status_code == 401
    row = await ApiClient.select(ApiClient.secret_hash).where(
        ApiClient.client_id == created["client_id"]).first()
    assert row["secret_hash"].startswith("scrypt$"), "a failed login changes nothing"

    assert (await client.post("/v2/auth/token", json=creds)).status_code == 200
    row = await ApiClient.select(ApiClient.secret_hash).where(
        ApiClient.client_id == created["client_id"]).first()
    assert row["secret_hash"].startswith("$argon2id$")
    assert (await client.post("/v2/auth/token", json=creds)).status_code == 200


async def test_wrong_secret_and_unknown_client_are_401_with_the_guide_body(client, admin_token):
    created = await _register(client, admin_token, ["streams:read"])
    for body in ({"client_id": created["client_id"], "client_secret": "wrong"},
                 {"client_id": "nobody-here", "client_secret": "x"}):
        response = await client.post("/v2/auth/token", json=body)
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid client credentials"}


async def test_refresh_rotates_and_refuses_the_superseded_token(client, admin_token):
    created = await _register(client, admin_token, ["streams:read"])
    creds = {"client_id": created["client_id"], "client_secret": created["client_secret"]}
    first = (await client.post("/v2/auth/token", json=creds)).json()

    second = await client.post("/v2/auth/token/refresh",
                               json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    ok = await client.get("/v2/streams", headers=bearer(rotated["access_token"]))
    assert ok.status_code == 200

    replay = await client.post("/v2/auth/token/refresh",
                               json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401

    # A new login supersedes the refresh token obtained by refreshing, too.
    await client.post("/v2/auth/token", json=creds)
    stale = await client.post("/v2/auth/token/refresh",
                              json={"refresh_token": rotated["refresh_token"]})
    assert stale.status_code == 401


async def test_only_admins_manage_clients(client, admin_token):
    reader = await token_for(client, admin_token, ["streams:read", "streams:write"])
    for method, path, body in (("post", "/v2/auth/clients", {"client_id": "x1", "scopes": ["streams:read"]}),
                               ("get", "/v2/auth/clients", None),
                               ("delete", "/v2/auth/clients/admin", None)):
        kwargs: dict[str, Any] = {"headers": bearer(reader)}
        if body is not None:
            kwargs["json"] = body
        response = await getattr(client, method)(path, **kwargs)
        assert response.status_code == 403, (method, path, response.text)


async def test_bad_client_registrations_are_4xx(client, admin_token):
    headers = bearer(admin_token)
    cases = [
        ({"client_id": "x", "scopes": ["streams:fly"]}, 400),
        ({"client_id": "x", "scopes": []}, 400),
        ({"client_id": "", "scopes": ["streams:read"]}, 400),
        ({"client_id": "has space", "scopes": ["streams:read"]}, 400),
        ({"client_id": "x"}, 400),
        ({"client_id": 5, "scopes": ["streams:read"]}, 400),
    ]
    for body, status in cases:
        response = await client.post("/v2/auth/clients", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert isinstance(response.json()["detail"], str)
    await client.post("/v2/auth/clients", json={"client_id": "dup", "scopes": ["streams:read"]},
                      headers=headers)
    again = await client.post("/v2/auth/clients", json={"client_id": "dup", "scopes": ["streams:read"]},
                              headers=headers)
    assert again.status_code == 409


async def test_deleting_a_client_revokes_its_tokens(client, admin_token):
    created = await _register(client, admin_token, ["streams:read"])
    token = (await client.post("/v2/auth/token", json={
        "client_id": created["client_id"], "client_secret": created["client_secret"]})).json()
    assert (await client.get("/v2/streams", headers=bearer(token["access_token"]))).status_code == 200
    deleted = await client.delete(f"/v2/auth/clients/{created['client_id']}", headers=bearer(admin_token))
    assert deleted.status_code == 204
    assert (await client.get("/v2/streams", headers=bearer(token["access_token"]))).status_code == 401
    refresh = await client.post("/v2/auth/token/refresh", json={"refresh_token": token["refresh_token"]})
    assert refresh.status_code == 401
    gone = await client.delete(f"/v2/auth/clients/{created['client_id']}", headers=bearer(admin_token))
    assert gone.status_code == 404
    itself = await client.delete("/v2/auth/clients/admin", headers=bearer(admin_token))
    assert itself.status_code == 409
    assert (await client.get("/v2/auth/clients", headers=bearer(admin_token))).status_code == 200


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_expired_tampered_and_unsigned_tokens_are_refused(client, admin_token, settings):
    secret = settings.auth.jwt_secret
    expired = issue_access_token(secret, "admin", ["streams:read"], ttl_s=-5)
    header, payload, signature = admin_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    tampered = ".".join([header, _b64(claims), signature])
    unsigned = ".".join([_b64({"alg": "none", "typ": "JWT"}), payload, ""])
    other_key = issue_access_token("not-the-server-key" * 3, "admin", ["admin"], ttl_s=600)
    hs512 = jwt.encode({**claims, "sub": "admin"}, secret, algorithm="HS512")

    for token, reason in ((expired, "expired"), (tampered, "signature"), (unsigned, "algorithm"),
                          (other_key, "signature"), (hs512, "algorithm"), ("garbage", "malformed")):
        response = await client.get("/v2/streams", headers=bearer(token))
        assert response.status_code == 401, (reason, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert reason in response.json()["detail"].lower(), response.json()

    for header_value in ("", "Bearer", "Basic abc", f"Token {admin_token}"):
        response = await client.get("/v2/streams", headers={"Authorization": header_value})
        assert response.status_code == 401


async def test_repeated_failed_logins_are_throttled(client, admin_token, settings):
    created = await _register(client, admin_token, ["streams:read"])
    limit = settings.auth.max_failed_logins
    for _ in range(limit):
        bad = await client.post("/v2/auth/token", json={"client_id": created["client_id"], "client_secret": "no"})
        assert bad.status_code == 401
    locked = await client.post("/v2/auth/token", json={
        "client_id": created["client_id"], "client_secret": created["client_secret"]})
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert "detail" in locked.json()
    # Other clients are not affected.
    admin = await client.post("/v2/auth/token", json={"client_id": "admin", "client_secret": ADMIN_SECRET})
    assert admin.status_code == 200
