"""Path and query values parsed by hand where Litestar's own parsing would answer badly.

A malformed id is a client error (400), not an unknown route (404); the stream-state filter
gets a message that names the parameter and the accepted values.
"""

from __future__ import annotations

import uuid

from core.errors import InvalidInput
from core.stream_states import StreamState


def parse_id(value: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{name} must be a UUID, got {value[:64]!r}") from None


def parse_state(raw: str | None) -> StreamState | None:
    if raw is None or raw == "":
        return None
    try:
        return StreamState(raw.upper())
    except ValueError:
        known = ", ".join(s.value for s in StreamState)
        raise InvalidInput(f"state must be one of {known}, got {raw[:32]!r}") from None
