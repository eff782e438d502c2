"""Per-caller bounds shared by every API process: consumers and capture jobs per client.

Redis keeps, per caller (an API client or an OmniSight user), the ids of what it started; the
database says which of them are still open or running. So a consumer that closes or expires,
or a job that completes or fails, frees its seat without anyone telling Redis, and the ids that
ended are pruned whenever the caller's set is counted.

`admit` adds the new id first and counts afterwards: two requests racing for the last seat may
both be refused (the caller retries), but the bound is never exceeded, whichever API process
answered them.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import MediaUnavailable, RateLimited, VasError

# A caller's set lives this long after its last request (its ids are re-counted every time).
KEY_TTL_S = 7 * 24 * 3600
# Retry-After of a refusal: a consumer frees its seat when its viewer leaves (or after the
# silence timeout); a snapshot job takes about a second, a clip as long as its post-roll.
CONSUMER_RETRY_AFTER_S = 5
JOB_RETRY_AFTER_S = 2

InFlight = Callable[[list[uuid.UUID]], Awaitable[set[uuid.UUID]]]


@contextlib.contextmanager
def _redis_reachable() -> Iterator[None]:
    """Redis away: the same 503 as every request that needs the job queue."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise MediaUnavailable("The job queue is not reachable", type(exc).__name__) from None


class CallerQuota:
    """At most `limit` open things of one kind (`kind`) per caller; 429 with Retry-After beyond."""

    def __init__(self, redis: Redis, namespace: str, kind: str, limit: int, *,
                 in_flight: InFlight, setting: str, what: str, retry_after_s: int) -> None:
        self._redis = redis
        self._namespace = namespace
        self._kind = kind
        self.limit = limit
        self._in_flight = in_flight
        self._setting = setting  # named in the refusal, e.g. VAS_MAX_CONSUMERS_PER_CLIENT
        self._what = what  # "open consumers", "snapshot and bookmark jobs in progress"
        self._retry_after_s = retry_after_s

    def _key(self, caller: str) -> str:
        # Hashed: the caller id is text and must not shape our key space.
        digest = hashlib.sha256(caller.encode()).hexdigest()[:32]
        return f"{self._namespace}:quota:{self._kind}:{digest}"

    async def count(self, caller: str) -> int:
        """Open things of `caller` now; forgets the ids that ended."""
        key = self._key(caller)
        with _redis_reachable():
            members = await self._redis.smembers(key)
        ids = [uuid.UUID(m.decode() if isinstance(m, bytes) else m) for m in members]
        if not ids:
            return 0
        open_ids = await self._in_flight(ids)
        ended = [str(i) for i in ids if i not in open_ids]
        if ended:
            with _redis_reachable():
                await self._redis.srem(key, *ended)
        return len(open_ids)

    def _refusal(self) -> RateLimited:
        return RateLimited(
            f"This client has {self.limit} {self._what}, the most it may have "
            f"({self._setting}); close or wait for one first",
            retry_after=self._retry_after_s,
            details={"limit": self.limit, "setting": self._setting},
        )

    async def check(self, caller: str) -> None:
        """Refuse at once when the caller is already at its bound (nothing started yet)."""
        if await self.count(caller) >= self.limit:
            raise self._refusal()

    async def admit(self, caller: str, thing: uuid.UUID) -> None:
        """Count `thing` (already open) for `caller`; refuse it when that exceeds the bound.
        After a refusal the caller must close or delete `thing`."""
        key = self._key(caller)
        with _redis_reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(key, str(thing))
                pipe.expire(key, KEY_TTL_S)
                await pipe.execute()
        if await self.count(caller) > self.limit:
            with _redis_reachable():
                await self._redis.srem(key, str(thing))
            raise self._refusal()

    async def admit_or_undo(self, caller: str, thing: uuid.UUID,
                            undo: Callable[[], Awaitable[object]]) -> None:
        """`admit`, running `undo` (close the consumer, delete the row) before refusing —
        beyond the bound (429) or with Redis away (503)."""
        try:
            await self.admit(caller, thing)
        except VasError:
            await undo()
            raise


def caller_of(kind: str, client_id: str) -> str:
    """One caller id for API clients and users alike (their ids could collide)."""
    return f"{kind}:{client_id}"
