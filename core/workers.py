"""Worker heartbeats: each worker process renews an entry in Redis from its housekeeping
loop, so that the system status can list the workers and tell a silent one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis

from core.clock import utcnow

# An entry not renewed for a day is forgotten (the worker is gone for good).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker process as its last heartbeat described it."""

    worker_id: str
    started_at: datetime
    beat_at: datetime
    period_s: float

    def healthy(self, now: datetime) -> bool:
        """Answering: its last beat is younger than three periods (and a little slack)."""
        return now - self.beat_at <= timedelta(seconds=3 * self.period_s + 5)


class WorkerRegistry:
    """The `<namespace>:workers` hash: worker id → its start, last beat and beat period."""

    def __init__(self, redis: Redis, namespace: str) -> None:
        self._redis = redis
        self._key = f"{namespace}:workers"

    async def beat(self, worker_id: str, started_at: datetime, period_s: float) -> None:
        value = {"started_at": started_at.isoformat(), "beat_at": utcnow().isoformat(),
                 "period_s": period_s}
        await self._redis.hset(self._key, worker_id, json.dumps(value))

    async def leave(self, worker_id: str) -> None:
        """A worker that stops cleanly is no longer listed."""
        await self._redis.hdel(self._key, worker_id)

    async def all(self) -> list[WorkerInfo]:
        """Every worker with a beat in the last day (older entries are dropped)."""
        entries = await self._redis.hgetall(self._key)
        now, workers, stale = utcnow(), [], []
        for raw_id, raw in entries.items():
            worker_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            try:
                value = json.loads(raw)
                info = WorkerInfo(worker_id, datetime.fromisoformat(value["started_at"]),
                                  datetime.fromisoformat(value["beat_at"]),
                                  float(value["period_s"]))
            except (ValueError, KeyError, TypeError):
                stale.append(worker_id)
                continue
            if now - info.beat_at > FORGET_AFTER:
                stale.append(worker_id)
            else:
                workers.append(info)
        if stale:
            await self._redis.hdel(self._key, *stale)
        return sorted(workers, key=lambda w: w.started_at)
