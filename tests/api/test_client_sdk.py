"""vas_client's REST side against the real app: token refresh at ~80 % of the lifetime."""

from __future__ import annotations

from tests.conftest import ADMIN_SECRET
from vas_client import VasClient
from vas_client.http import VasError


async def test_the_client_refreshes_its_token_and_rotation_is_honoured(client):
    vas = VasClient("http://vas.test", "admin", ADMIN_SECRET)
    vas._http = client  # the in-process app
    first = await vas.token()
    first_refresh = vas._refresh
    assert await vas.token() == first  # still fresh: no new request
    assert await vas.devices() == []

    vas._expires_at = 0.0  # 80 % of the hour has passed
    second = await vas.token()
    assert second != first and vas._refresh != first_refresh
    # The refresh endpoint was used: the refresh token it replaced is refused now.
    reused = await client.post("/v2/auth/token/refresh", json={"refresh_token": first_refresh})
    assert reused.status_code == 401
    assert await vas.devices() == []

    wrong = VasClient("http://vas.test", "admin", "not-the-secret")
    wrong._http = client
    try:
        await wrong.token()
    except VasError as exc:
        assert exc.status == 401
    else:
        raise AssertionError("a wrong secret got a token")
