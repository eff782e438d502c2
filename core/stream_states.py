"""The stream state machine of the guide's Appendix A, in one place.

INITIALIZING → READY → LIVE; ERROR is recoverable (back to LIVE on reconnect); STOPPED is a
manual stop and CLOSED the terminal state after cleanup.
"""

from __future__ import annotations

from enum import StrEnum


class StreamState(StrEnum):
    """The states of Appendix A."""

    INITIALIZING = "INITIALIZING"
    READY = "READY"
    LIVE = "LIVE"
    ERROR = "ERROR"
    STOPPED = "STOPPED"
    CLOSED = "CLOSED"


S = StreamState
TRANSITIONS: dict[StreamState, frozenset[StreamState]] = {
    S.INITIALIZING: frozenset({S.READY, S.LIVE, S.ERROR, S.STOPPED}),
    S.READY: frozenset({S.LIVE, S.ERROR, S.STOPPED}),
    # LIVE → INITIALIZING: the owning node died and another node takes the stream over.
    S.LIVE: frozenset({S.ERROR, S.STOPPED, S.INITIALIZING}),
    S.ERROR: frozenset({S.INITIALIZING, S.READY, S.LIVE, S.STOPPED}),
    S.STOPPED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}

# A stream in one of these holds (or is acquiring) an ingest: one per camera at most.
ACTIVE_STATES = frozenset({S.INITIALIZING, S.READY, S.LIVE, S.ERROR})


def sources_of(target: StreamState) -> frozenset[StreamState]:
    """The states from which `target` may be entered."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)

