"""The stream registry: one active stream per camera, state changes through the state
machine, and the stream's producer, codec and metrics. The one home of `vas_stream` and
`vas_producer` (leases: `core.leases`)."""

from __future__ import annotations

import contextlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from piccolo.query.functions.aggregate import Count
from piccolo.querystring import QueryString

from core.clock import utcnow
from core.consumers import ConsumerService
from core.devices import camera_status, device_name, mark_active
from core.errors import Conflict, NotFound, StreamError
from core.notify import Notifier
from core.notify import camera_status as camera_status_message
from core.stream_states import ACTIVE_STATES, StreamState, sources_of
from core.tables import Producer, Stream


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One ingest of one camera."""

    id: uuid.UUID
    camera_id: uuid.UUID
    name: str
    state: StreamState
    last_error: str | None
    error_code: str | None  # the guide's code of `last_error`, when it has one
    codec_config: dict[str, Any] | None
    metrics: dict[str, Any] | None
    checked_at: datetime | None
    node_id: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None

    @property
    def active(self) -> bool:
        """The stream holds (or is acquiring) the camera's one ingest."""
        return self.state in ACTIVE_STATES

    @property
    def profile_level_id(self) -> str | None:
        """The H.264 profile WebRTC consumers are served (the camera's, or the transcoder's
        when the stream transcodes), once known."""
        config = self.codec_config or {}
        served = config.get("webrtc") if "webrtc" in config else config.get("video")
        profile = (served or {}).get("profile")
        return str(profile) if profile else None

    @property
    def has_audio(self) -> bool:
        """The camera sends audio (served over WebRTC as Opus): `codec_config.audio`."""
        return bool((self.codec_config or {}).get("audio"))

    @property
    def webrtc_refusal(self) -> str | None:
        """Why WebRTC consumers cannot have this stream (a camera codec with transcode
        'never'), or None."""
        refusal = (self.codec_config or {}).get("webrtc_refusal")
        return str(refusal) if refusal else None


class ProducerState(StrEnum):
    ACTIVE = "ACTIVE"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class ProducerRecord:
    """The stream's single video producer (the guide's mediasoup producer)."""

    id: uuid.UUID
    stream_id: uuid.UUID
    mediasoup_id: str
    transport_id: str
    state: ProducerState
    ssrc: int | None
    created_at: datetime

    @property
    def audio_mediasoup_id(self) -> str:
        """The id of the stream's audio producer (the guide's `producers.audio`), derived
        from the video producer's: as stable across reconnects and failover."""
        return f"{self.mediasoup_id}-audio"


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """What a list of streams shows of one."""

    id: uuid.UUID
    camera_id: uuid.UUID
    name: str
    state: StreamState
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SummaryPage:
    rows: list[StreamSummary]
    total: int


@dataclass(frozen=True, slots=True)
class StreamPage:
    """One page of streams and the total matching the filter."""

    rows: list[StreamRecord]
    total: int


def failure_fields(error: StreamError) -> dict[str, Any]:
    """The columns that record a failed start: the guide's code in a column of its own, and
    `last_error` (what clients read) starting with that code."""
    return {"error_code": error.error_code,
            "last_error": f"{error.error_code}: {error.message}"}


_TOTAL = "total_matching"


def _record(row: dict[str, Any], extra: str | None = None) -> StreamRecord:
    """A row as a record; `extra` names a column of the query that is not the table's."""
    fields = {**row, "state": StreamState(row["state"])}
    if extra is not None:
        del fields[extra]
    return StreamRecord(**fields)


def _active_filter(camera_id: uuid.UUID) -> Any:
    return (Stream.camera_id == camera_id) & Stream.state.is_in([s.value for s in ACTIVE_STATES])


class StreamService:
    """Reads and state changes of streams and their producer."""

    def __init__(self, consumers: ConsumerService | None = None,
                 notifier: Notifier | None = None) -> None:
        self._consumers = consumers or ConsumerService()
        # Publishes `camera_status` when a state change changes the camera's OmniSight
        # status; every process that changes stream states passes one.
        self._notifier = notifier

    async def announce(self, message: dict[str, Any]) -> None:
        """Publish a live message (e.g. a `system_notification`) if this service has a
        notifier; best-effort like every live message."""
        if self._notifier is not None:
            await self._notifier.send(message)

    async def get(self, stream_id: uuid.UUID) -> StreamRecord:
        row: dict[str, Any] | None = await Stream.select().where(Stream.id == stream_id).first(
        ).output(load_json=True)
        if row is None:
            raise NotFound(f"Stream {stream_id} not found")
        return _record(row)

    async def active_for_camera(self, camera_id: uuid.UUID) -> StreamRecord | None:
        row: dict[str, Any] | None = await Stream.select().where(_active_filter(camera_id)).first(
        ).output(load_json=True)
        return None if row is None else _record(row)

    async def count_by_state(self) -> dict[StreamState, int]:
        """Streams by state (every state, zeros included)."""
        rows = await Stream.select(Stream.state, Count(alias="n")).group_by(Stream.state)
        found = {StreamState(r["state"]): int(r["n"]) for r in rows}
        return {state: found.get(state, 0) for state in StreamState}

    async def page(
        self, state: StreamState | None, camera_id: uuid.UUID | None, limit: int, offset: int
    ) -> StreamPage:
        rows, total = await self._page(Stream.all_columns(), state, camera_id, limit, offset)
        return StreamPage(rows=[_record(r, _TOTAL) for r in rows], total=total)

    async def summaries(
        self, state: StreamState | None, camera_id: uuid.UUID | None, limit: int, offset: int
    ) -> SummaryPage:
        """`page` with only what a list shows (no codec, metrics or lease to convert)."""
        columns = [Stream.id, Stream.camera_id, Stream.name, Stream.state, Stream.created_at]
        rows, total = await self._page(columns, state, camera_id, limit, offset)
        return SummaryPage(rows=[StreamSummary(r["id"], r["camera_id"], r["name"],
                                               StreamState(r["state"]), r["created_at"])
                                 for r in rows], total=total)

    async def _page(self, columns: list[Any], state: StreamState | None,
                    camera_id: uuid.UUID | None, limit: int,
                    offset: int) -> tuple[list[dict[str, Any]], int]:
        condition: Any = None
        if state is not None:
            condition = Stream.state == state.value
        if camera_id is not None:
            by_camera = Stream.camera_id == camera_id
            condition = by_camera if condition is None else condition & by_camera
        # One query: the page and, on every row, the total matching the filter.
        query = Stream.select(*columns, QueryString("COUNT(*) OVER ()").as_alias(
            _TOTAL)).order_by(Stream.created_at, ascending=False)
        if condition is not None:
            query = query.where(condition)
        rows: list[dict[str, Any]] = await query.offset(offset).limit(limit).output(
            load_json=True)
        if rows:
            total = int(rows[0][_TOTAL])
        elif offset == 0:
            total = 0
        else:  # past the end: no row carries the total
            count = Stream.count()
            total = await (count if condition is None else count.where(condition))
        return rows, total

    async def create(self, camera_id: uuid.UUID) -> tuple[StreamRecord, bool]:
        """The camera's active stream, or a new INITIALIZING one; True when it was created.

        A partial unique index (see `core.db`) makes this safe between processes: of two
        concurrent creates for one camera, the second fails and returns the first's stream.
        """
        existing = await self.active_for_camera(camera_id)
        if existing is not None:
            return existing, False
        name = await device_name(camera_id)
        now = utcnow()
        stream = Stream(
            id=uuid.uuid4(), camera_id=camera_id, name=name,
            state=StreamState.INITIALIZING.value, created_at=now, updated_at=now,
        )
        try:
            await stream.save()
        except Exception:
            existing = await self.active_for_camera(camera_id)
            if existing is None:
                raise
            return existing, False
        await mark_active(camera_id, True)
        return await self.get(stream.id), True

    async def transition(
        self, stream_id: uuid.UUID, target: StreamState, **fields: Any
    ) -> StreamRecord:
        """Move a stream to `target` if the machine allows it from its current state, and
        set `fields` (columns of the stream) with it.

        The check and the write are one conditional UPDATE, so concurrent writers cannot
        both win an illegal transition.
        """
        values: dict[Any, Any] = {Stream.state: target.value, Stream.updated_at: utcnow()}
        values.update({getattr(Stream, name): value for name, value in fields.items()})
        sources = [s.value for s in sources_of(target)]
        before = await Stream.select(Stream.state).where(Stream.id == stream_id).first()
        changed = await Stream.update(values).where(
            (Stream.id == stream_id) & Stream.state.is_in(sources)
        ).returning(Stream.id, Stream.camera_id)
        if not changed:
            current = await self.get(stream_id)
            raise Conflict(f"Stream is {current.state}; it cannot become {target.value}")
        camera_id = changed[0]["camera_id"]
        if target in (StreamState.STOPPED, StreamState.CLOSED):
            await mark_active(camera_id, False)
        previous = None if before is None else StreamState(before["state"])
        await self.announce_status(camera_id, previous, target)
        return await self.get(stream_id)

    async def announce_status(self, camera_id: uuid.UUID, previous: StreamState | None,
                       current: StreamState) -> None:
        """Tell the WebSocket when a state change changed the camera's status."""
        status = camera_status(current)
        if camera_status(previous) is not status:
            await self.announce(camera_status_message(camera_id, status.value))

    async def close(self, stream_id: uuid.UUID) -> None:
        """Stop a stream (if running) and close it and its consumers; idempotent once CLOSED."""
        row = await self.get(stream_id)
        if row.state is StreamState.CLOSED:
            return
        if row.state is not StreamState.STOPPED:
            await self.transition(stream_id, StreamState.STOPPED, stopped_at=utcnow())
        await self._consumers.close_all(stream_id)
        await Producer.update({Producer.state: ProducerState.CLOSED.value}).where(
            Producer.stream_id == stream_id)
        await self.transition(stream_id, StreamState.CLOSED)

    async def fail(self, stream_id: uuid.UUID, error: StreamError) -> None:
        """A start that failed for good: ERROR with the error, then closed."""
        fields = failure_fields(error)
        try:
            await self.transition(stream_id, StreamState.ERROR, **fields)
        except Conflict:
            # Already ERROR when the ingest reported its own failure first: the start's
            # error (with the guide's code) is the one to keep.
            await Stream.update({
                **{getattr(Stream, name): value for name, value in fields.items()},
                Stream.updated_at: utcnow(),
            }).where((Stream.id == stream_id) & (Stream.state == StreamState.ERROR.value))
        with contextlib.suppress(Conflict):
            await self.close(stream_id)

    async def abandoned_starts(self, created_before: datetime) -> list[uuid.UUID]:
        """Streams still INITIALIZING with no owner since before `created_before`."""
        rows = await Stream.select(Stream.id).where(
            (Stream.state == StreamState.INITIALIZING.value) & Stream.node_id.is_null()
            & (Stream.created_at < created_before)
        )
        return [row["id"] for row in rows]

    async def set_codec(self, stream_id: uuid.UUID, codec_config: dict[str, Any]) -> None:
        """What the camera really sends (the stream detail's `codec_config`)."""
        await Stream.update({Stream.codec_config: codec_config}).where(Stream.id == stream_id)

    async def report_metrics(self, stream_id: uuid.UUID, node_id: str,
                             metrics: dict[str, Any]) -> None:
        """The owning node's latest ingest metrics (ignored once another node owns it)."""
        await Stream.update({Stream.metrics: metrics, Stream.checked_at: utcnow()}).where(
            (Stream.id == stream_id) & (Stream.node_id == node_id))

    async def producer(self, stream_id: uuid.UUID) -> ProducerRecord | None:
        row: dict[str, Any] | None = await Producer.select().where(
            Producer.stream_id == stream_id
        ).first()
        if row is None:
            return None
        return ProducerRecord(**{**row, "state": ProducerState(row["state"])})

    async def ensure_producer(self, stream_id: uuid.UUID) -> None:
        """One producer per stream for its whole life (a unique index makes it so), so its
        ids stay the same across reconnects and failover."""
        if await Producer.exists().where(Producer.stream_id == stream_id):
            await Producer.update({Producer.state: ProducerState.ACTIVE.value}).where(
                Producer.stream_id == stream_id)
            return
        with contextlib.suppress(Exception):  # created meanwhile: the index refused a twin
            await Producer(
                id=uuid.uuid4(), stream_id=stream_id,
                mediasoup_id=f"producer-{secrets.token_hex(8)}",
                transport_id=f"transport-{secrets.token_hex(8)}",
                state=ProducerState.ACTIVE.value,
                ssrc=secrets.randbelow(900_000_000) + 100_000_000, created_at=utcnow(),
            ).save()
