"""API clients and their tokens: registration, login, refresh rotation, revocation."""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.clock import utcnow
from core.credentials import hash_secret, token_digest, verify_secret
from core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from core.passwords import needs_rehash
from core.settings import AuthSettings
from core.tables import ApiClient
from core.throttle import LoginThrottle
from core.tokens import Principal, issue_access_token, new_refresh_token

SCOPES = (
    "streams:read",
    "streams:write",
    "streams:consume",
    "snapshots:read",
    "snapshots:write",
    "bookmarks:read",
    "bookmarks:write",
    # OmniSight areas (docs/omnisight.md); users get theirs from their role (core.users).
    "cameras:read",
    "cameras:write",
    "recordings:read",
    "recordings:write",
    "events:read",
    "events:write",
    "detection:read",
    "detection:write",
    "system:read",
    "system:write",
    "users:admin",
)
ADMIN_SCOPE = "admin"
ALL_SCOPES = (*SCOPES, ADMIN_SCOPE)
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
# Verified against when the client id is unknown, so both paths cost the same time.
_DUMMY_HASH = functools.cache(lambda: hash_secret(secrets.token_urlsafe(16)))


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A registered client as the API shows it (never with its secret)."""

    client_id: str
    scopes: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """An access token and the client's new (only valid) refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    scopes: list[str]


def _record(row: dict[str, Any]) -> ClientRecord:
    return ClientRecord(row["client_id"], list(row["scopes"]), row["created_at"])


def validate_scopes(scopes: list[str]) -> list[str]:
    """Known scopes only, at least one, duplicates removed, order kept."""
    unknown = [s for s in scopes if s not in ALL_SCOPES]
    if unknown:
        raise InvalidInput(f"Unknown scopes: {', '.join(unknown)}; known: {', '.join(ALL_SCOPES)}")
    if not scopes:
        raise InvalidInput("scopes must name at least one scope")
    return list(dict.fromkeys(scopes))


class ClientService:
    """Registers clients and turns their credentials into tokens."""

    # How long a "this client exists" answer is reused by one API process: a deleted
    # client's tokens stop working at once in the process that deleted it, and within this
    # many seconds in every other one. Saves a database round trip per request.
    ACTIVE_CACHE_S = 2.0

    def __init__(self, auth: AuthSettings, throttle: LoginThrottle) -> None:
        self._auth = auth
        self._throttle = throttle
        self._active_until: dict[str, float] = {}

    async def create(self, client_id: str, scopes: list[str]) -> tuple[ClientRecord, str]:
        """Register a client; the secret is returned here and never again."""
        if not _CLIENT_ID.match(client_id):
            raise InvalidInput(
                "client_id must be 1-128 characters of letters, digits and . _ : @ -, "
                "starting with a letter or digit"
            )
        scopes = validate_scopes(scopes)
        secret = secrets.token_urlsafe(32)
        secret_hash = await asyncio.to_thread(hash_secret, secret)
        if await ApiClient.exists().where(ApiClient.client_id == client_id):
            raise Conflict(f"Client {client_id!r} already exists")
        row = ApiClient(
            client_id=client_id, secret_hash=secret_hash, scopes=scopes, created_at=utcnow()
        )
        try:
            await row.save()
        except Exception as exc:  # a concurrent create of the same id hit the unique index
            if await ApiClient.exists().where(ApiClient.client_id == client_id):
                raise Conflict(f"Client {client_id!r} already exists") from exc
            raise
        return ClientRecord(client_id, scopes, row.created_at), secret

    async def all(self) -> list[ClientRecord]:
        rows = await ApiClient.select(
            ApiClient.client_id, ApiClient.scopes, ApiClient.created_at
        ).order_by(ApiClient.created_at).output(load_json=True)
        return [_record(r) for r in rows]

    async def delete(self, client_id: str, requested_by: str) -> None:
        """Remove a client; its tokens stop working at once (see `check_active`).

        A client cannot delete itself, so the last admin cannot lock everyone out.
        """
        if client_id == requested_by:
            raise Conflict("A client cannot delete itself")
        if not _CLIENT_ID.match(client_id) or not await ApiClient.exists().where(
            ApiClient.client_id == client_id
        ):
            raise NotFound(f"Client {client_id[:128]!r} not found")
        await ApiClient.delete().where(ApiClient.client_id == client_id)
        self._active_until.pop(client_id, None)

    async def login(self, client_id: str, client_secret: str) -> IssuedTokens:
        """Check credentials (throttled) and issue tokens, revoking the previous refresh token."""
        await self._throttle.check(client_id)
        row = await ApiClient.select().where(ApiClient.client_id == client_id).first().output(
            load_json=True
        )
        stored = row["secret_hash"] if row else await asyncio.to_thread(_DUMMY_HASH)
        valid = await asyncio.to_thread(verify_secret, client_secret, stored)
        if row is None or not valid:
            await self._throttle.failed(client_id)
            raise Unauthorized("Invalid client credentials")
        await self._throttle.succeeded(client_id)
        if needs_rehash(stored):  # a scrypt hash of an earlier release, or old parameters
            rehashed = await asyncio.to_thread(hash_secret, client_secret)
            await ApiClient.update({ApiClient.secret_hash: rehashed}).where(
                (ApiClient.client_id == client_id) & (ApiClient.secret_hash == stored))
        return await self._issue(client_id, list(row["scopes"]))

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        """Exchange the client's current refresh token for new tokens (rotation)."""
        digest = token_digest(refresh_token)
        row = await ApiClient.select(ApiClient.client_id, ApiClient.scopes).where(
            (ApiClient.refresh_token_hash == digest) & (ApiClient.refresh_expires_at > utcnow())
        ).first().output(load_json=True)
        if row is None:
            raise Unauthorized("Invalid or expired refresh token")
        tokens = await self._issue(row["client_id"], list(row["scopes"]), expected=digest)
        return tokens

    async def check_active(self, principal: Principal) -> None:
        """Revocation hook: a token of a deleted client is refused."""
        now = time.monotonic()
        if self._active_until.get(principal.client_id, 0.0) > now:
            return
        if not await ApiClient.exists().where(ApiClient.client_id == principal.client_id):
            self._active_until.pop(principal.client_id, None)
            raise Unauthorized("Client has been revoked")
        if len(self._active_until) > 10_000:  # bounded: forget everything now and then
            self._active_until.clear()
        self._active_until[principal.client_id] = now + self.ACTIVE_CACHE_S

    async def _issue(
        self, client_id: str, scopes: list[str], expected: str | None = None
    ) -> IssuedTokens:
        refresh = new_refresh_token()
        condition: Any = ApiClient.client_id == client_id
        if expected is not None:
            # Conditional swap: of two concurrent refreshes with one token, one wins.
            condition &= ApiClient.refresh_token_hash == expected
        changed = await ApiClient.update(
            {
                ApiClient.refresh_token_hash: token_digest(refresh),
                ApiClient.refresh_expires_at: utcnow()
                + timedelta(seconds=self._auth.refresh_ttl_s),
            }
        ).where(condition).returning(ApiClient.client_id)
        if not changed:
            raise Unauthorized("Invalid or expired refresh token")
        access = issue_access_token(
            self._auth.jwt_secret, client_id, scopes, self._auth.access_ttl_s
        )
        return IssuedTokens(access, refresh, self._auth.access_ttl_s, scopes)


async def ensure_admin(auth: AuthSettings) -> str | None:
    """Create the bootstrap admin client on first start.

    Its secret comes from VAS_ADMIN_CLIENT_SECRET, or is generated and returned so the
    caller can show it once. Later starts leave an existing admin client untouched.
    """
    if await ApiClient.exists().where(ApiClient.client_id == auth.admin_client_id):
        return None
    generated = auth.admin_client_secret is None
    secret = auth.admin_client_secret or secrets.token_urlsafe(32)
    try:
        await ApiClient(
            client_id=auth.admin_client_id,
            secret_hash=await asyncio.to_thread(hash_secret, secret),
            scopes=list(ALL_SCOPES),
            created_at=utcnow(),
        ).save()
    except Exception:  # another process created it first
        if await ApiClient.exists().where(ApiClient.client_id == auth.admin_client_id):
            return None
        raise
    return secret if generated else None


def admin_banner(client_id: str, secret: str) -> str:
    """The one-time message showing a generated admin secret."""
    return (
        "\n=== VAS admin API client created; the secret is shown only this once ===\n"
        f"  VAS_ADMIN_CLIENT_ID={client_id}\n  VAS_ADMIN_CLIENT_SECRET={secret}\n"
        "  (POST /v2/auth/token with these to get an access token)\n"
    )
