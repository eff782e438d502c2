"""Access tokens: HS256 JWTs made and checked with pyjwt, the algorithm pinned."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt

from core.clock import utcnow
from core.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "vas"
CLIENT_KIND = "client"
USER_KIND = "user"
KINDS = (CLIENT_KIND, USER_KIND)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the subject and the scopes its token carries.

    `client_id` is the token's subject: an API client's id, or a user's id when `kind` is
    "user" (then `session_id` names the sign-in session the token belongs to).
    """

    client_id: str
    scopes: frozenset[str]
    token_id: str
    kind: str = CLIENT_KIND
    session_id: str | None = None
    expires_at: float | None = None  # POSIX seconds

    @property
    def is_user(self) -> bool:
        return self.kind == USER_KIND


def issue_access_token(
    secret: str, client_id: str, scopes: list[str], ttl_s: int, *,
    kind: str = CLIENT_KIND, session_id: str | None = None,
) -> str:
    """A signed access token for `client_id` (an API client, or a user) valid for `ttl_s` s."""
    now = utcnow()
    claims: dict[str, object] = {
        "iss": ISSUER,
        "sub": client_id,
        "scope": " ".join(scopes),
        "typ": "access",
        "kind": kind,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=ttl_s),
        "jti": uuid.uuid4().hex,
    }
    if session_id is not None:
        claims["sid"] = session_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def new_refresh_token() -> str:
    """An opaque refresh token; only its digest is stored."""
    return secrets.token_urlsafe(48)


# Tokens already checked, by (secret, token): a client sends the same token with every
# request, and checking its signature and claims again was a tenth of a cached read's CPU
# (docs/performance.md). Only the lifetime can change its answer, and it is checked on
# every hit; revocation is not this function's business (`api.auth.verify_token`).
_CHECKED: dict[tuple[str, str], Principal] = {}
_CHECKED_MAX = 4096


def decode_access_token(secret: str, token: str) -> Principal:
    """Check signature, algorithm, issuer, lifetime and type; each failure is a 401 reason."""
    principal = _CHECKED.get((secret, token))
    if principal is not None:
        if principal.expires_at is not None and principal.expires_at > time.time():
            return principal
        del _CHECKED[(secret, token)]
    principal = _decode(secret, token)
    if len(_CHECKED) >= _CHECKED_MAX:  # bounded: forget everything now and then
        _CHECKED.clear()
    _CHECKED[(secret, token)] = principal
    return principal


def _decode(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("Token has expired") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("Token signature is invalid") from None
    except jwt.InvalidAlgorithmError:
        raise Unauthorized("Token algorithm is not accepted") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"Token lacks the {exc.claim!r} claim") from None
    except jwt.ImmatureSignatureError:
        raise Unauthorized("Token is not valid yet") from None
    except jwt.InvalidIssuerError:
        raise Unauthorized("Token issuer is not accepted") from None
    except jwt.PyJWTError:
        raise Unauthorized("Token is malformed") from None
    if claims.get("typ") != "access" or not isinstance(claims.get("scope", ""), str):
        raise Unauthorized("Token is not an access token")
    kind = claims.get("kind", CLIENT_KIND)  # tokens issued before users existed had none
    session_id = claims.get("sid")
    if kind not in KINDS or (session_id is not None and not isinstance(session_id, str)):
        raise Unauthorized("Token is malformed")
    return Principal(
        client_id=str(claims["sub"]),
        scopes=frozenset(claims.get("scope", "").split()),
        token_id=str(claims["jti"]),
        kind=str(kind),
        session_id=session_id,
        expires_at=float(claims["exp"]),
    )
