"""Media-node registry: each node announces its control queue and renews a heartbeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.clock import utcnow
from core.tables import MediaNode


@dataclass(frozen=True, slots=True)
class NodeBeat:
    """A registered media node with its start and last heartbeat (alive or not)."""

    node_id: str
    started_at: datetime
    heartbeat_at: datetime
    alive: bool


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A media node as readiness and schedulers see it."""

    node_id: str
    queue_name: str
    capacity: int
    streams: int


class NodeRegistry:
    """Heartbeats in the database; a node is alive while its heartbeat is younger than the lease."""

    def __init__(self, lease_s: float) -> None:
        self._lease = timedelta(seconds=lease_s)

    async def register(self, node_id: str, queue_name: str, capacity: int) -> None:
        now = utcnow()
        await MediaNode.delete().where(MediaNode.node_id == node_id)
        await MediaNode(
            node_id=node_id, queue_name=queue_name, capacity=capacity, streams=0,
            started_at=now, heartbeat_at=now,
        ).save()

    async def heartbeat(self, node_id: str, streams: int) -> None:
        await MediaNode.update(
            {MediaNode.heartbeat_at: utcnow(), MediaNode.streams: streams}
        ).where(MediaNode.node_id == node_id)

    async def deregister(self, node_id: str) -> None:
        await MediaNode.delete().where(MediaNode.node_id == node_id)

    async def alive(self) -> list[NodeInfo]:
        rows: list[dict[str, Any]] = await MediaNode.select().where(
            MediaNode.heartbeat_at > utcnow() - self._lease
        )
        return [NodeInfo(r["node_id"], r["queue_name"], r["capacity"], r["streams"]) for r in rows]

    async def registered(self) -> list[NodeBeat]:
        """Every node still registered (not yet pruned), alive or not, oldest first."""
        cutoff = utcnow() - self._lease
        rows = await MediaNode.select(
            MediaNode.node_id, MediaNode.started_at, MediaNode.heartbeat_at
        ).order_by(MediaNode.started_at)
        return [NodeBeat(r["node_id"], r["started_at"], r["heartbeat_at"],
                         r["heartbeat_at"] > cutoff) for r in rows]

    async def prune(self) -> int:
        """Forget nodes whose heartbeat stopped long ago (ten leases)."""
        stale = await MediaNode.delete().where(
            MediaNode.heartbeat_at < utcnow() - 10 * self._lease
        ).returning(MediaNode.node_id)
        return len(stale)
