"""WebRTC consumers (and WHEP sessions) of streams: the one home of `vas_consumer`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from piccolo.query.functions.aggregate import Count

from core.clock import utcnow
from core.errors import NotFound
from core.tables import Consumer


class ConsumerState(StrEnum):
    """NEW after consume, CONNECTING once the client connects, CONNECTED while media flows,
    CLOSED for good (detached, transport lost, stream stopped)."""

    NEW = "NEW"
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    """A consumer as the API lists it."""

    id: uuid.UUID
    stream_id: uuid.UUID
    client_id: str
    state: ConsumerState
    transport_id: str | None
    created_at: datetime
    last_seen_at: datetime | None
    closed_at: datetime | None


def _record(row: dict[str, Any]) -> ConsumerRecord:
    return ConsumerRecord(
        id=row["id"], stream_id=row["stream_id"], client_id=row["client_id"],
        state=ConsumerState(row["state"]), transport_id=row["transport_id"],
        created_at=row["created_at"], last_seen_at=row["last_seen_at"],
        closed_at=row["closed_at"],
    )


_OPEN = Consumer.state != ConsumerState.CLOSED.value


class ConsumerService:
    """Every read and write of consumer rows."""

    async def add(self, consumer_id: uuid.UUID, stream_id: uuid.UUID, client_id: str,
                  state: ConsumerState, transport_id: str) -> None:
        now = utcnow()
        await Consumer(
            id=consumer_id, stream_id=stream_id, client_id=client_id, state=state.value,
            transport_id=transport_id, created_at=now, last_seen_at=now,
        ).save()

    async def get(self, stream_id: uuid.UUID, consumer_id: uuid.UUID) -> ConsumerRecord:
        row: dict[str, Any] | None = await Consumer.select().where(
            (Consumer.id == consumer_id) & (Consumer.stream_id == stream_id)
        ).first()
        if row is None:
            raise NotFound(f"Consumer {consumer_id} not found")
        return _record(row)

    async def of_stream(self, stream_id: uuid.UUID) -> list[ConsumerRecord]:
        """Every consumer of the stream, closed ones included, newest first."""
        rows = await Consumer.select().where(Consumer.stream_id == stream_id).order_by(
            Consumer.created_at, ascending=False)
        return [_record(r) for r in rows]

    async def set_state(self, consumer_id: uuid.UUID, state: ConsumerState) -> None:
        """Move an open consumer to `state` (a closed one stays closed)."""
        await Consumer.update({Consumer.state: state.value, Consumer.last_seen_at: utcnow()}
                              ).where((Consumer.id == consumer_id) & _OPEN)

    async def close(self, consumer_id: uuid.UUID) -> None:
        """Record a consumer closed (idempotent)."""
        await Consumer.update({Consumer.state: ConsumerState.CLOSED.value,
                               Consumer.closed_at: utcnow()}).where(
            (Consumer.id == consumer_id) & _OPEN)

    async def close_all(self, stream_id: uuid.UUID) -> None:
        """Record every consumer of a stream closed (the stream stopped or moved)."""
        await Consumer.update({Consumer.state: ConsumerState.CLOSED.value,
                               Consumer.closed_at: utcnow()}).where(
            (Consumer.stream_id == stream_id) & _OPEN)

    async def seen(self, consumer_id: uuid.UUID, at: datetime) -> None:
        """When the consumer was last heard from (the node's heartbeat)."""
        await Consumer.update({Consumer.last_seen_at: at}).where(Consumer.id == consumer_id)

    async def open_among(self, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """The consumers of `ids` that are not closed (per-client bounds)."""
        rows = await Consumer.select(Consumer.id).where(Consumer.id.is_in(ids) & _OPEN)
        return {r["id"] for r in rows}

    async def count_by_state(self) -> dict[ConsumerState, int]:
        """Consumers of every stream by state (every state, zeros included)."""
        rows = await Consumer.select(Consumer.state, Count(alias="n")).group_by(Consumer.state)
        found = {ConsumerState(r["state"]): int(r["n"]) for r in rows}
        return {state: found.get(state, 0) for state in ConsumerState}

    async def counts(self, stream_id: uuid.UUID) -> tuple[int, int]:
        """(consumers attached and not closed, consumers whose media is flowing)."""
        attached = await Consumer.count().where((Consumer.stream_id == stream_id) & _OPEN)
        connected = await Consumer.count().where(
            (Consumer.stream_id == stream_id)
            & (Consumer.state == ConsumerState.CONNECTED.value))
        return int(attached), int(connected)
