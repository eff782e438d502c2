"""User passwords: argon2id hashes (memory-hard) and the password policy."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 128
# The most common passwords of at least 8 characters: refused whatever else is true.
_COMMON = frozenset({
    "password", "password1", "password123", "12345678", "123456789", "1234567890",
    "qwertyui", "qwerty123", "qwertyuiop", "11111111", "00000000", "iloveyou", "abc12345",
    "abcd1234", "1q2w3e4r", "admin123", "letmein1", "welcome1", "sunshine", "football",
    "baseball", "princess", "trustno1", "changeme", "passw0rd",
})
# argon2-cffi's defaults are RFC 9106's second recommendation: argon2id, t=3, m=64 MiB,
# p=4. Hashing costs ~50-100 ms and 64 MiB, so it runs off the event loop (see core.users).
_HASHER = PasswordHasher()


def check_policy(password: str, *, username: str = "", email: str = "") -> None:
    """Refuse a password that breaks the policy (InvalidInput naming the field)."""

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"password {reason}", details={"field": "password"})

    if len(password) < MIN_LENGTH:
        raise refuse(f"must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise refuse(f"must have at most {MAX_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in password):
        raise refuse("must not contain control characters")
    if not password.strip():
        raise refuse("must not be only spaces")
    if len(set(password)) < 3:
        raise refuse("must use at least 3 different characters")
    lowered = password.lower()
    if lowered in _COMMON:
        raise refuse("is too common")
    if lowered in {username.lower(), email.lower(), email.lower().partition("@")[0]}:
        raise refuse("must not be the username or the email address")


def hash_password(password: str) -> str:
    """An argon2id hash with its own salt and parameters (PHC string)."""
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored`; never raises for a bad or foreign hash."""
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when `stored` is not an argon2id hash with today's parameters (rehash it at the
    next successful sign-in)."""
    try:
        return not stored.startswith("$argon2id$") or _HASHER.check_needs_rehash(stored)
    except (InvalidHashError, ValueError):
        return True


def generate_password() -> str:
    """A random password for the bootstrap admin (shown once)."""
    return secrets.token_urlsafe(18)


@functools.cache
def dummy_hash() -> str:
    """Verified against when an email is unknown, so both paths cost the same time."""
    return hash_password(secrets.token_urlsafe(16))
