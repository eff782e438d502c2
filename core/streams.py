"""The stream registry: one active stream per camera, state changes through the state machine."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from core.clock import utcnow
from core.errors import Conflict, NotFound
from core.stream_states import ACTIVE_STATES, StreamState, sources_of
from core.tables import Consumer, Device, Producer, Stream

CONSUMER_CLOSED = "CLOSED"
CONSUMER_CONNECTED = "CONNECTED"


@dataclass(frozen=True, slots=True)
class StreamPage:
    """One page of streams and the total matching the filter."""

    rows: list[dict[str, Any]]
    total: int


def _active_filter(camera_id: uuid.UUID) -> Any:
    return (Stream.camera_id == camera_id) & Stream.state.is_in([s.value for s in ACTIVE_STATES])


class StreamService:
    """Reads and state changes of streams, their producer and consumers."""

    async def get(self, stream_id: uuid.UUID) -> dict[str, Any]:
        row: dict[str, Any] | None = await Stream.select().where(Stream.id == stream_id).first(
        ).output(load_json=True)
        if row is None:
            raise NotFound(f"Stream {stream_id} not found")
        return row

    async def active_for_camera(self, camera_id: uuid.UUID) -> dict[str, Any] | None:
        row: dict[str, Any] | None = await Stream.select().where(_active_filter(camera_id)).first(
        ).output(load_json=True)
        return row

    async def page(
        self, state: StreamState | None, camera_id: uuid.UUID | None, limit: int, offset: int
    ) -> StreamPage:
        condition: Any = None
        if state is not None:
            condition = Stream.state == state.value
        if camera_id is not None:
            by_camera = Stream.camera_id == camera_id
            condition = by_camera if condition is None else condition & by_camera
        query = Stream.select().order_by(Stream.created_at, ascending=False)
        count = Stream.count()
        if condition is not None:
            query = query.where(condition)
            count = count.where(condition)
        rows = await query.offset(offset).limit(limit).output(load_json=True)
        return StreamPage(rows=rows, total=await count)

    async def create(self, camera_id: uuid.UUID) -> tuple[dict[str, Any], bool]:
        """The camera's active stream, or a new INITIALIZING one; True when it was created.

        A partial unique index (see `core.db`) makes this safe between processes: of two
        concurrent creates for one camera, the second fails and returns the first's stream.
        """
        existing = await self.active_for_camera(camera_id)
        if existing is not None:
            return existing, False
        device = await Device.select(Device.name).where(Device.id == camera_id).first()
        if device is None:
            raise NotFound(f"Device {camera_id} not found")
        now = utcnow()
        stream = Stream(
            id=uuid.uuid4(), camera_id=camera_id, name=device["name"],
            state=StreamState.INITIALIZING.value, created_at=now, updated_at=now,
        )
        try:
            await stream.save()
        except Exception:
            existing = await self.active_for_camera(camera_id)
            if existing is None:
                raise
            return existing, False
        await Device.update({Device.is_active: True}).where(Device.id == camera_id)
        return await self.get(stream.id), True

    async def transition(
        self, stream_id: uuid.UUID, target: StreamState, **fields: Any
    ) -> dict[str, Any]:
        """Move a stream to `target` if the machine allows it from its current state.

        The check and the write are one conditional UPDATE, so concurrent writers cannot
        both win an illegal transition.
        """
        values: dict[Any, Any] = {Stream.state: target.value, Stream.updated_at: utcnow()}
        values.update({getattr(Stream, name): value for name, value in fields.items()})
        sources = [s.value for s in sources_of(target)]
        changed = await Stream.update(values).where(
            (Stream.id == stream_id) & Stream.state.is_in(sources)
        ).returning(Stream.id, Stream.camera_id)
        if not changed:
            current = await self.get(stream_id)
            raise Conflict(f"Stream is {current['state']}; it cannot become {target.value}")
        if target in (StreamState.STOPPED, StreamState.CLOSED):
            await Device.update({Device.is_active: False}).where(
                Device.id == changed[0]["camera_id"]
            )
        return await self.get(stream_id)

    async def close(self, stream_id: uuid.UUID) -> None:
        """Stop a stream (if running) and close it and its consumers; idempotent once CLOSED."""
        row = await self.get(stream_id)
        state = StreamState(row["state"])
        if state is StreamState.CLOSED:
            return
        if state is not StreamState.STOPPED:
            await self.transition(stream_id, StreamState.STOPPED, stopped_at=utcnow())
        await self.close_consumers(stream_id)
        await Producer.update({Producer.state: "CLOSED"}).where(Producer.stream_id == stream_id)
        await self.transition(stream_id, StreamState.CLOSED)

    async def close_consumers(self, stream_id: uuid.UUID) -> None:
        now = utcnow()
        await Consumer.update({Consumer.state: CONSUMER_CLOSED, Consumer.closed_at: now}).where(
            (Consumer.stream_id == stream_id) & (Consumer.state != CONSUMER_CLOSED)
        )

    async def producer(self, stream_id: uuid.UUID) -> dict[str, Any] | None:
        row: dict[str, Any] | None = await Producer.select().where(
            Producer.stream_id == stream_id
        ).first()
        return row

    async def consumer_counts(self, stream_id: uuid.UUID) -> tuple[int, int]:
        """(consumers attached and not closed, consumers whose media is flowing)."""
        attached = await Consumer.count().where(
            (Consumer.stream_id == stream_id) & (Consumer.state != CONSUMER_CLOSED)
        )
        connected = await Consumer.count().where(
            (Consumer.stream_id == stream_id) & (Consumer.state == CONSUMER_CONNECTED)
        )
        return int(attached), int(connected)

