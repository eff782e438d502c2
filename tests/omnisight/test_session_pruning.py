"""Housekeeping forgets expired sign-in sessions and those revoked over a day ago; a session
revoked just now is kept (logging out twice still answers 200)."""

from __future__ import annotations

from datetime import timedelta

from core.clock import utcnow
from core.tables import UserSession
from core.user_sessions import prune_sessions
from tests.omnisight.conftest import BASE, new_user


async def test_prune_keeps_live_and_recently_revoked_sessions(client):
    sessions = [await new_user(client) for _ in range(4)]
    rows = await UserSession.select(UserSession.id).order_by(UserSession.created_at)
    expired, old_revoked, new_revoked, live = (row["id"] for row in rows[-4:])
    now = utcnow()
    await UserSession.update({UserSession.expires_at: now - timedelta(seconds=1)}).where(
        UserSession.id == expired)
    await UserSession.update({UserSession.revoked_at: now - timedelta(days=2)}).where(
        UserSession.id == old_revoked)
    logout = await client.post(f"{BASE}/auth/logout",
                               json={"refreshToken": sessions[2]["refreshToken"]})
    assert logout.status_code == 200

    assert await prune_sessions() == 2
    left = {row["id"] for row in await UserSession.select(UserSession.id)}
    assert {new_revoked, live} <= left and not {expired, old_revoked} & left
    again = await client.post(f"{BASE}/auth/logout",
                              json={"refreshToken": sessions[2]["refreshToken"]})
    assert again.status_code == 200
