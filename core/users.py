"""OmniSight users: registration, sign-in, their settings, roles and the scopes they give.

Users get the same kind of access token as API clients (core.tokens, `kind: "user"`); the
scopes in it come from the user's role (`ROLE_SCOPES`, the one table of that mapping).
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.clients import ADMIN_SCOPE, ALL_SCOPES
from core.clock import utcnow
from core.errors import ConfigError, Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from core.passwords import (
    check_policy,
    dummy_hash,
    generate_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from core.settings import AuthSettings
from core.tables import User
from core.throttle import LoginThrottle
from core.tokens import USER_KIND, Principal, issue_access_token
from core.user_sessions import SessionStore


class Role(enum.StrEnum):
    """What a user may do; see ROLE_SCOPES."""

    USER = "user"
    ADMIN = "admin"


USERS_ADMIN_SCOPE = "users:admin"
# A `user` reads and watches, starts and stops streams and recordings, takes snapshots; an
# `admin` may do everything (the `admin` scope satisfies every check), which includes
# managing cameras, users, detection, system settings and API clients.
ROLE_SCOPES: dict[Role, tuple[str, ...]] = {
    Role.USER: (
        "streams:read", "streams:write", "streams:consume", "snapshots:read", "snapshots:write",
        "bookmarks:read", "cameras:read", "recordings:read", "recordings:write", "events:read",
        "detection:read", "system:read",
    ),
    Role.ADMIN: ALL_SCOPES,
}
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
SETTINGS_MAX_BYTES = 16 * 1024
SETTINGS_MAX_KEYS = 64


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the API shows it (never with the password hash)."""

    id: uuid.UUID
    username: str
    email: str
    role: Role
    settings: dict[str, Any]
    created_at: datetime
    last_login: datetime | None


@dataclass(frozen=True, slots=True)
class UserTokens:
    """An access token and the session's new refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    user: UserRecord


@dataclass(frozen=True, slots=True)
class UserPage:
    """One page of users, oldest first, with the total count."""

    users: list[UserRecord]
    total: int
    page: int
    limit: int


def _record(row: dict[str, Any]) -> UserRecord:
    settings = row["settings"]
    if isinstance(settings, str):
        settings = json.loads(settings)
    return UserRecord(
        id=row["id"], username=row["username"], email=row["email"], role=Role(row["role"]),
        settings=dict(settings or {}), created_at=row["created_at"], last_login=row["last_login"],
    )


def normalize_email(email: str) -> str:
    """The stored form of an email (stripped, lowercased); 400 when it is not an address."""
    value = email.strip().lower()
    if len(value) > 254 or not EMAIL.match(value):
        raise InvalidInput("email is not a valid email address", details={"field": "email"})
    return value


def _check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise InvalidInput(
            "username must be 3-64 characters of letters, digits and . _ -, starting with a "
            "letter or digit", details={"field": "username"},
        )
    return username


def _role(value: str | None) -> Role:
    try:
        return Role(value or Role.USER)
    except ValueError:
        raise InvalidInput(
            f"role must be one of: {', '.join(r.value for r in Role)}", details={"field": "role"}
        ) from None


def may_manage_users(principal: Principal | None) -> bool:
    """True for callers holding `users:admin` (admin users, admin clients)."""
    return principal is not None and bool(
        {USERS_ADMIN_SCOPE, ADMIN_SCOPE} & principal.scopes
    )


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A user's settings object: JSON, at most 64 keys and 16 KiB encoded."""
    if len(settings) > SETTINGS_MAX_KEYS:
        raise InvalidInput(f"settings may hold at most {SETTINGS_MAX_KEYS} keys",
                           details={"field": "settings"})
    if len(json.dumps(settings, separators=(",", ":"))) > SETTINGS_MAX_BYTES:
        raise InvalidInput(f"settings must encode to at most {SETTINGS_MAX_BYTES} bytes",
                           details={"field": "settings"})
    return settings


class UserService:
    """Registers users, signs them in and out, and keeps their settings."""

    # As for clients: how long one process trusts "this user and session are live".
    ACTIVE_CACHE_S = 2.0

    def __init__(self, auth: AuthSettings, throttle: LoginThrottle) -> None:
        self._auth = auth
        self._throttle = throttle
        self._sessions = SessionStore(auth.refresh_ttl_s)
        self._active_until: dict[tuple[str, str | None], float] = {}

    async def register(
        self, username: str, email: str, password: str, role: str | None,
        by: Principal | None,
    ) -> UserRecord:
        """Create an account. Anyone may create a `user` while registration is open; only
        callers with `users:admin` may create an `admin`, or anyone while it is closed."""
        wanted = _role(role)
        if not self._auth.open_registration and not may_manage_users(by):
            if by is None:
                raise Unauthorized("Registration is closed: sign in as an administrator")
            raise Forbidden("Registration is closed: only administrators create accounts")
        if wanted is Role.ADMIN and not may_manage_users(by):
            raise Forbidden("Only administrators may create admin accounts")
        return await self.create(username, email, password, wanted)

    async def create(self, username: str, email: str, password: str, role: Role) -> UserRecord:
        """Store a new user (no permission check: callers decide)."""
        username, email = _check_username(username), normalize_email(email)
        check_policy(password, username=username, email=email)
        await self._refuse_taken(username, email)
        password_hash = await asyncio.to_thread(hash_password, password)
        now = utcnow()
        row = User(
            id=uuid.uuid4(), username=username, username_key=username.lower(), email=email,
            password_hash=password_hash, role=role.value, settings={}, disabled=False,
            created_at=now, updated_at=now, last_login=None,
        )
        try:
            await row.save()
        except Exception:  # a concurrent registration hit a unique index
            await self._refuse_taken(username, email)
            raise
        return await self.get(row.id)

    async def _refuse_taken(self, username: str, email: str) -> None:
        if await User.exists().where(User.email == email):
            raise Conflict("An account with this email already exists",
                           details={"field": "email"})
        if await User.exists().where(User.username_key == username.lower()):
            raise Conflict("This username is taken", details={"field": "username"})

    async def get(self, user_id: uuid.UUID) -> UserRecord:
        row = await User.select().where(User.id == user_id).first().output(load_json=True)
        if row is None:
            raise NotFound(f"User {user_id} not found",
                           details={"resourceType": "User", "resourceId": str(user_id)})
        return _record(row)

    async def me(self, principal: Principal) -> UserRecord:
        """The calling user (403 for an API client's token: it is no user)."""
        return await self.get(self._user_id(principal))

    async def login(self, email: str, password: str) -> UserTokens:
        """Check the password (throttled per email) and open a new session."""
        key = email.strip().lower()
        await self._throttle.check(key)
        row = await User.select().where(User.email == key).first().output(load_json=True)
        stored = row["password_hash"] if row else dummy_hash()
        valid = await asyncio.to_thread(verify_password, password, stored)
        if row is None or not valid or row["disabled"]:
            await self._throttle.failed(key)
            raise Unauthorized("Invalid email or password")
        await self._throttle.succeeded(key)
        now = utcnow()
        changes: dict[Any, Any] = {User.last_login: now}
        if needs_rehash(stored):  # argon2id parameters raised since this hash was made
            changes[User.password_hash] = await asyncio.to_thread(hash_password, password)
        await User.update(changes).where(User.id == row["id"])
        session = await self._sessions.open(row["id"])
        user = _record({**row, "last_login": now})
        return self._tokens(user, session.session_id, session.refresh_token)

    async def refresh(self, refresh_token: str) -> UserTokens:
        """Rotate the session's refresh token and issue a new access token."""
        session = await self._sessions.rotate(refresh_token)
        row = await User.select().where(User.id == session.user_id).first().output(load_json=True)
        if row is None or row["disabled"]:
            await self._sessions.revoke_all(session.user_id)
            raise Unauthorized("User account has been removed or disabled")
        return self._tokens(_record(row), session.session_id, session.refresh_token)

    async def logout(self, refresh_token: str) -> None:
        """End the session of `refresh_token`; its access tokens stop working too."""
        user_id, session_id = await self._sessions.revoke(refresh_token)
        # This process refuses the session's access tokens at once; others within the cache.
        self._active_until.pop((str(user_id), session_id.hex), None)

    async def update_settings(self, principal: Principal, changes: dict[str, Any]) -> UserRecord:
        """Merge `changes` into the user's settings (a key set to null is removed)."""
        user = await self.me(principal)
        merged = {**user.settings, **changes}
        merged = check_settings({k: v for k, v in merged.items() if v is not None})
        await User.update({User.settings: merged, User.updated_at: utcnow()}).where(
            User.id == user.id
        )
        return await self.get(user.id)

    async def page(self, page: int, limit: int) -> UserPage:
        """Users oldest first; `page` counts from 1."""
        total = await User.count()
        rows = await User.select().order_by(User.created_at).order_by(User.id).offset(
            (page - 1) * limit
        ).limit(limit).output(load_json=True)
        return UserPage([_record(r) for r in rows], total, page, limit)

    async def check_active(self, principal: Principal) -> None:
        """Revocation hook: a token of a removed or disabled user, or of an ended session,
        is refused (answers reused for ACTIVE_CACHE_S per process)."""
        key = (principal.client_id, principal.session_id)
        now = time.monotonic()
        if self._active_until.get(key, 0.0) > now:
            return
        user_id = self._user_id(principal)
        row = await User.select(User.disabled).where(User.id == user_id).first()
        if row is None or row["disabled"]:
            raise Unauthorized("User account has been removed or disabled")
        if principal.session_id is not None and not await self._sessions.is_live(
            self._uuid(principal.session_id)
        ):
            raise Unauthorized("Session has ended; sign in again")
        if len(self._active_until) > 10_000:
            self._active_until.clear()
        self._active_until[key] = now + self.ACTIVE_CACHE_S

    def _tokens(self, user: UserRecord, session_id: uuid.UUID, refresh: str) -> UserTokens:
        access = issue_access_token(
            self._auth.jwt_secret, str(user.id), list(ROLE_SCOPES[user.role]),
            self._auth.access_ttl_s, kind=USER_KIND, session_id=session_id.hex,
        )
        return UserTokens(access, refresh, self._auth.access_ttl_s, user)

    def _user_id(self, principal: Principal) -> uuid.UUID:
        if not principal.is_user:
            raise Forbidden("This operation is for user accounts; API client tokens have no user")
        return self._uuid(principal.client_id)

    @staticmethod
    def _uuid(value: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise Unauthorized("Token is malformed") from None


async def ensure_admin_user(auth: AuthSettings) -> str | None:
    """Create the bootstrap admin user on first start (when no admin user exists).

    Its password comes from VAS_ADMIN_PASSWORD, or is generated and returned so the caller
    can show it once. An existing account is never promoted.
    """
    if await User.exists().where(User.role == Role.ADMIN.value):
        return None
    email = normalize_email(auth.admin_email)
    if await User.exists().where(User.email == email):
        raise ConfigError(f"VAS_ADMIN_EMAIL {email} belongs to an existing non-admin account")
    generated = auth.admin_password is None
    password = auth.admin_password or generate_password()
    username = "admin"
    if await User.exists().where(User.username_key == username):
        username = f"admin-{uuid.uuid4().hex[:6]}"
    try:
        check_policy(password, username=username, email=email)
    except InvalidInput as exc:
        raise ConfigError(f"VAS_ADMIN_PASSWORD: {exc.message}") from None
    now = utcnow()
    try:
        await User(
            id=uuid.uuid4(), username=username, username_key=username, email=email,
            password_hash=await asyncio.to_thread(hash_password, password), role=Role.ADMIN.value,
            settings={}, disabled=False, created_at=now, updated_at=now, last_login=None,
        ).save()
    except Exception:  # another process created it first
        if await User.exists().where(User.role == Role.ADMIN.value):
            return None
        raise
    return password if generated else None


def admin_user_banner(email: str, password: str) -> str:
    """The one-time message showing a generated admin password."""
    return (
        "\n=== VAS admin user created; the password is shown only this once ===\n"
        f"  VAS_ADMIN_EMAIL={email}\n  VAS_ADMIN_PASSWORD={password}\n"
        "  (POST /api/v1/auth/login with these to sign in)\n"
    )
