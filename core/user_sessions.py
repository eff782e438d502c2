"""Users' sign-in sessions: opaque refresh tokens that rotate on every use.

A refresh token is `<session id>.<random>`; the session row keeps only the SHA-256 of the
current one. Presenting a token whose session exists but whose digest is not the current
one means an old (already rotated) token was replayed — by the user or by a thief — so the
whole session is revoked (reuse detection). A user may hold several sessions (browsers).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from core.clock import utcnow
from core.credentials import token_digest
from core.errors import Unauthorized
from core.tables import UserSession

logger = logging.getLogger(__name__)

MAX_SESSIONS_PER_USER = 20
_INVALID = "Invalid or expired refresh token"


@dataclass(frozen=True, slots=True)
class SessionToken:
    """A session and its new refresh token (shown to the caller once)."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    refresh_token: str


def _new_token(session_id: uuid.UUID) -> str:
    return f"{session_id.hex}.{secrets.token_urlsafe(32)}"


def _session_id(token: str) -> uuid.UUID:
    head, dot, tail = token.partition(".")
    if not dot or not tail or len(token) > 512:
        raise Unauthorized(_INVALID)
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        raise Unauthorized(_INVALID) from None


class SessionStore:
    """Opens, rotates and revokes sessions; tells whether one is still live."""

    def __init__(self, refresh_ttl_s: int) -> None:
        self._ttl = timedelta(seconds=refresh_ttl_s)

    async def open(self, user_id: uuid.UUID) -> SessionToken:
        """A new session for a sign-in; the user's oldest sessions beyond the cap end."""
        now = utcnow()
        await UserSession.delete().where(
            (UserSession.user_id == user_id) & (UserSession.expires_at < now)
        )
        session_id = uuid.uuid4()
        token = _new_token(session_id)
        await UserSession(
            id=session_id, user_id=user_id, refresh_digest=token_digest(token), created_at=now,
            last_used_at=now, expires_at=now + self._ttl,
        ).save()
        live = await UserSession.select(UserSession.id).where(
            (UserSession.user_id == user_id) & UserSession.revoked_at.is_null()
        ).order_by(UserSession.created_at, ascending=False)
        stale = [row["id"] for row in live[MAX_SESSIONS_PER_USER:]]
        if stale:
            await UserSession.update({UserSession.revoked_at: now}).where(
                UserSession.id.is_in(stale)
            )
        return SessionToken(user_id, session_id, token)

    async def rotate(self, token: str) -> SessionToken:
        """Exchange the session's current refresh token for a new one.

        An old token of a live session revokes that session (401 either way).
        """
        session_id = _session_id(token)
        row: dict[str, Any] | None = await UserSession.select().where(
            UserSession.id == session_id
        ).first()
        if row is None or row["revoked_at"] is not None:
            raise Unauthorized(_INVALID)
        digest = token_digest(token)
        if not hmac.compare_digest(row["refresh_digest"], digest):
            await self._revoke_reused(session_id, row["user_id"])
        now = utcnow()
        if row["expires_at"] <= now:
            raise Unauthorized(_INVALID)
        new = _new_token(session_id)
        changed = await UserSession.update({
            UserSession.refresh_digest: token_digest(new),
            UserSession.last_used_at: now,
            UserSession.expires_at: now + self._ttl,
        }).where(
            (UserSession.id == session_id) & (UserSession.refresh_digest == digest)
            & UserSession.revoked_at.is_null()
        ).returning(UserSession.id)
        if not changed:  # another request rotated this token first: it was used twice
            await self._revoke_reused(session_id, row["user_id"])
        return SessionToken(row["user_id"], session_id, new)

    async def revoke(self, token: str) -> tuple[uuid.UUID, uuid.UUID]:
        """End the session a refresh token belongs to (current or rotated-out token);
        returns (user id, session id)."""
        session_id = _session_id(token)
        row = await UserSession.select(UserSession.user_id).where(
            UserSession.id == session_id
        ).first()
        if row is None:
            raise Unauthorized(_INVALID)
        await UserSession.update({UserSession.revoked_at: utcnow()}).where(
            (UserSession.id == session_id) & UserSession.revoked_at.is_null()
        )
        return row["user_id"], session_id

    async def revoke_all(self, user_id: uuid.UUID) -> None:
        """End every session of a user."""
        await UserSession.update({UserSession.revoked_at: utcnow()}).where(
            (UserSession.user_id == user_id) & UserSession.revoked_at.is_null()
        )

    async def is_live(self, session_id: uuid.UUID) -> bool:
        """True while the session is neither revoked nor expired."""
        return bool(await UserSession.exists().where(
            (UserSession.id == session_id) & UserSession.revoked_at.is_null()
            & (UserSession.expires_at > utcnow())
        ))

    async def _revoke_reused(self, session_id: uuid.UUID, user_id: uuid.UUID) -> NoReturn:
        await UserSession.update({UserSession.revoked_at: utcnow()}).where(
            UserSession.id == session_id
        )
        logger.warning("a rotated refresh token was presented again: session of user %s revoked",
                       user_id)
        raise Unauthorized("Refresh token was already used; the session has been revoked")


# A revoked session is kept this long, so that logging out twice still answers 200 and a
# reused refresh token is still recognised; then housekeeping forgets it.
REVOKED_KEPT = timedelta(days=1)


async def prune_sessions() -> int:
    """Forget expired sessions and those revoked more than a day ago (housekeeping)."""
    now = utcnow()
    gone = await UserSession.delete().where(
        (UserSession.expires_at < now) | (UserSession.revoked_at < now - REVOKED_KEPT)
    ).returning(UserSession.id)
    return len(gone)
