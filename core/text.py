"""Validation of free text from requests: length, and no control characters (PostgreSQL
refuses NUL in text, and terminals and logs must not receive escape sequences)."""

from __future__ import annotations

from core.errors import InvalidInput


def clean_text(
    value: str | None, field: str, limit: int, *, required: bool = False, multiline: bool = False
) -> str | None:
    """`value` stripped, or None; 400 when empty (if required), too long or with controls."""
    if value is None:
        if required:
            raise InvalidInput(f"{field} is required")
        return None
    allowed = "\n\t" if multiline else ""
    if any((ord(ch) < 32 or ord(ch) == 127) and ch not in allowed for ch in value):
        raise InvalidInput(f"{field} must not contain control characters")
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} must not be empty")
    if len(value) > limit:
        raise InvalidInput(f"{field} must be at most {limit} characters")
    return value
