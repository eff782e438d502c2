"""Response bodies of the WebRTC consumer routes (guide §3.3, §3.4), from their records."""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

from core.clock import iso
from core.consumers import ConsumerRecord, ConsumerState


class RouterCapabilitiesView(TypedDict):
    rtp_capabilities: dict[str, Any]


class ConnectView(TypedDict):
    status: str
    consumer_id: str
    transport_id: str


class CandidateView(TypedDict):
    status: str
    consumer_id: str


class ConsumerView(TypedDict):
    id: str
    client_id: str
    state: str
    created_at: str | None
    last_seen_at: str | None
    closed_at: str | None


class ConsumerListView(TypedDict):
    stream_id: str
    total_consumers: int
    active_consumers: int
    consumers: list[ConsumerView]


class ConsumeView(TypedDict):
    consumer_id: str
    transport: dict[str, Any]
    rtp_parameters: dict[str, Any]


def consumer_view(row: ConsumerRecord) -> ConsumerView:
    return {
        "id": str(row.id), "client_id": row.client_id, "state": row.state.value,
        "created_at": iso(row.created_at), "last_seen_at": iso(row.last_seen_at),
        "closed_at": iso(row.closed_at),
    }


def consumer_list_view(stream_id: uuid.UUID, rows: list[ConsumerRecord]) -> ConsumerListView:
    return {
        "stream_id": str(stream_id),
        "total_consumers": len(rows),
        "active_consumers": sum(1 for r in rows if r.state is ConsumerState.CONNECTED),
        "consumers": [consumer_view(r) for r in rows],
    }


def consume_view(consumer_id: uuid.UUID, transport: dict[str, Any],
                 rtp_parameters: dict[str, Any]) -> ConsumeView:
    return {"consumer_id": str(consumer_id), "transport": transport,
            "rtp_parameters": rtp_parameters}
