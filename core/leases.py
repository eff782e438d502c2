"""Stream ownership: a media node owns a stream by a lease it renews with its heartbeat.

Every change is one conditional UPDATE, so two nodes can never both own a stream: the one
whose UPDATE matched the row wins, the other sees no row returned.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from core.clock import utcnow
from core.stream_states import ACTIVE_STATES, StreamState
from core.tables import Stream

_ACTIVE = [s.value for s in ACTIVE_STATES]


class StreamLeases:
    """The ownership operations of one media node."""

    def __init__(self, node_id: str, lease_s: float) -> None:
        self.node_id = node_id
        self._lease = timedelta(seconds=lease_s)

    async def claim(self, stream_id: uuid.UUID, restarting: str | None = None) -> bool:
        """Take an active stream that nobody holds, that we hold, or whose lease lapsed.

        `restarting` (the reason) takes a stream over to start it again: it becomes
        INITIALIZING in the same UPDATE, so no reader sees the last owner's LIVE under the
        new owner's name."""
        now = utcnow()
        free = (
            Stream.node_id.is_null()
            | (Stream.node_id == self.node_id)
            | (Stream.lease_expires_at < now)
        )
        values: dict[Any, Any] = {Stream.node_id: self.node_id,
                                  Stream.lease_expires_at: now + self._lease}
        if restarting is not None:
            values.update({Stream.state: StreamState.INITIALIZING.value,
                           Stream.last_error: restarting, Stream.updated_at: now})
        won = await Stream.update(values).where(
            (Stream.id == stream_id) & Stream.state.is_in(_ACTIVE) & free
        ).returning(Stream.id)
        return bool(won)

    async def renew(self, running: set[uuid.UUID]) -> set[uuid.UUID]:
        """Extend the leases of the streams we run; return those we still own (and that are
        active). Only running streams are renewed: a node restarted under the same id must
        not keep alive the leases of its previous life (`mine` finds those)."""
        if not running:
            return set()
        rows: list[dict[str, Any]] = await Stream.update(
            {Stream.lease_expires_at: utcnow() + self._lease}
        ).where(
            (Stream.node_id == self.node_id) & Stream.state.is_in(_ACTIVE)
            & Stream.id.is_in(list(running))
        ).returning(Stream.id)
        return {row["id"] for row in rows}

    async def mine(self) -> list[uuid.UUID]:
        """Active streams recorded under our node id: after a restart with the same id
        (a StatefulSet pod), the streams of our previous life (oldest lease first)."""
        rows: list[dict[str, Any]] = await Stream.select(Stream.id).where(
            Stream.state.is_in(_ACTIVE) & (Stream.node_id == self.node_id)
        ).order_by(Stream.lease_expires_at)
        return [row["id"] for row in rows]

    async def release(self, stream_id: uuid.UUID) -> None:
        await Stream.update({Stream.node_id: None, Stream.lease_expires_at: None}).where(
            (Stream.id == stream_id) & (Stream.node_id == self.node_id)
        )

    async def release_all(self) -> list[uuid.UUID]:
        """On a clean shutdown: let other nodes take our streams over at once (the lease is
        put a full lease into the past, so a peer whose clock lags still sees it lapsed).
        The owner stays recorded, so `orphans` lists them; returns the active ones."""
        rows: list[dict[str, Any]] = await Stream.update(
            {Stream.lease_expires_at: utcnow() - self._lease}
        ).where(
            (Stream.node_id == self.node_id) & Stream.state.is_in(_ACTIVE)
        ).returning(Stream.id)
        return [row["id"] for row in rows]

    async def expire(self, stream_ids: list[uuid.UUID]) -> None:
        """Lapse our leases of these streams at once (streams we hold but cannot run)."""
        if stream_ids:
            await Stream.update({Stream.lease_expires_at: utcnow() - self._lease}).where(
                (Stream.node_id == self.node_id) & Stream.id.is_in(stream_ids))

    async def orphans(self, limit: int) -> list[uuid.UUID]:
        """Active streams whose owner stopped renewing (oldest lease first)."""
        # Our own streams are never orphans: `renew` keeps them, even after a slow beat.
        rows: list[dict[str, Any]] = await Stream.select(Stream.id).where(
            Stream.state.is_in(_ACTIVE)
            & Stream.node_id.is_not_null()
            & (Stream.node_id != self.node_id)
            & (Stream.lease_expires_at < utcnow())
        ).order_by(Stream.lease_expires_at).limit(limit)
        return [row["id"] for row in rows]
