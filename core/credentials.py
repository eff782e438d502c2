"""Secrets at rest: client-secret hashes (argon2id), encrypted camera passwords, masked URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken

from core.errors import InvalidInput
from core.passwords import hash_password, verify_password

MASK = "******"
# The scheme of client secrets before argon2id: still verified, rehashed at the next login.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# user:password@ inside any URL-ish text, for log lines and error messages.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):[^@/\s]*@")
# ?token=… (and access_token, refresh_token) in URLs: the WebSocket accepts a token there.
_URL_TOKEN = re.compile(r"(?P<key>[?&;](?:access_|refresh_)?token=)[^&#\s\"']+", re.IGNORECASE)


def hash_secret(secret: str) -> str:
    """An argon2id hash (as user passwords): the admin's secret may be chosen by a person."""
    return hash_password(secret)


def verify_secret(secret: str, stored: str) -> bool:
    """Check `secret` against an argon2id hash, or a scrypt hash of an earlier release."""
    if stored.startswith("$argon2"):
        return verify_password(secret, stored)
    return _verify_scrypt(secret, stored)


def legacy_scrypt_hash(secret: str) -> str:
    """The earlier releases' scheme (scrypt, N=2^14), kept to test the upgrade path."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_SCRYPT['n']}${b64(salt).decode()}${b64(digest).decode()}"


def _verify_scrypt(secret: str, stored: str) -> bool:
    """Constant-time comparison of `secret` against a `legacy_scrypt_hash` value."""
    try:
        scheme, n, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=base64.urlsafe_b64decode(salt), dklen=len(expected),
            n=int(n), r=_SCRYPT["r"], p=_SCRYPT["p"],
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def token_digest(token: str) -> str:
    """SHA-256 of a high-entropy token (refresh tokens need no salt: they are random)."""
    return hashlib.sha256(token.encode()).hexdigest()


def mask_text(text: str) -> str:
    """Replace the password of every URL, and every `token=` query value, with the mask."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _URL_TOKEN.sub(lambda m: f"{m['key']}{MASK}", masked)


class CredentialBox:
    """Encrypts camera passwords with a key that lives outside the database (Fernet)."""

    def __init__(self, key_material: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(key_material.encode()).digest())
        self._fernet = Fernet(key)

    def seal(self, password: str) -> str:
        return self._fernet.encrypt(password.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise InvalidInput("stored camera password cannot be decrypted with this key") from None


def split_rtsp_url(url: str) -> tuple[str, str | None]:
    """Validate an RTSP URL; return it without its password, and the password apart."""
    if len(url) > 2048:
        raise InvalidInput("rtsp_url is longer than 2048 characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidInput("rtsp_url must not contain whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"rtsp_url is not a valid URL: {mask_text(str(exc))}") from None
    if parts.scheme.lower() not in ("rtsp", "rtsps"):
        raise InvalidInput("rtsp_url must start with rtsp:// or rtsps://")
    if not parts.hostname:
        raise InvalidInput("rtsp_url has no host")
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, "")), password


def with_password(url: str, password: str | None, *, masked: bool) -> str:
    """Put the (real or masked) password back into a URL stored without it."""
    if password is None:
        return url
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    secret = MASK if masked else quote(password, safe="")
    return urlunsplit((parts.scheme, f"{user}:{secret}@{host}", parts.path, parts.query, ""))
