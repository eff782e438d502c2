"""Access tokens: a token checked once is answered from memory, but never past its lifetime
and never for another secret."""

from __future__ import annotations

import time

import pytest

from core.errors import Unauthorized
from core.tokens import decode_access_token, issue_access_token

SECRET = "unit-test-secret-0123456789abcdef0123456789"


def test_a_checked_token_still_expires() -> None:
    token = issue_access_token(SECRET, "c1", ["streams:read"], ttl_s=1)
    first = decode_access_token(SECRET, token)
    assert decode_access_token(SECRET, token) == first  # answered again while valid
    time.sleep(max(0.0, (first.expires_at or 0) - time.time()) + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        decode_access_token(SECRET, token)


def test_a_checked_token_is_refused_under_another_secret() -> None:
    token = issue_access_token(SECRET, "c2", ["streams:read"], ttl_s=60)
    assert decode_access_token(SECRET, token).client_id == "c2"
    with pytest.raises(Unauthorized, match="signature"):
        decode_access_token(SECRET + "x", token)
