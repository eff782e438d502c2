"""WebSocket connections per caller across every API process (`VAS_MAX_WS_PER_USER`).

A Redis sorted set per caller: one member per open connection, scored with the moment it
lapses unless renewed. A connection renews its seat while it lives and gives it back when it
ends; a process that dies leaves seats that lapse after `TTL_S`. The new seat is added
first and counted after, so connections racing for the last seat may both be refused but
the bound is never exceeded. With Redis away the seat is not counted (the connection is
admitted and logged): the notifications it would receive come through Redis anyway.
"""

from __future__ import annotations

import hashlib
import logging
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

RENEW_S = 15.0
TTL_S = 3 * RENEW_S


class WsSeats:
    def __init__(self, redis: Redis, namespace: str, limit: int) -> None:
        self._redis = redis
        self._namespace = namespace
        self.limit = limit

    def _key(self, caller: str) -> str:
        digest = hashlib.sha256(caller.encode()).hexdigest()[:32]
        return f"{self._namespace}:ws-seats:{digest}"

    async def take(self, caller: str, seat: str) -> bool:
        """Take a seat for `seat` (a connection id); False when the caller has none left."""
        key, now = self._key(caller), time.time()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {seat: now + TTL_S})
                pipe.zcard(key)
                pipe.expire(key, int(TTL_S) + 1)
                taken = (await pipe.execute())[2]
            if int(taken) > self.limit:
                await self._redis.zrem(key, seat)
                return False
        except (RedisError, OSError) as exc:
            logger.warning("WebSocket seats not counted (Redis: %s)", type(exc).__name__)
        return True

    async def renew(self, caller: str, seat: str) -> None:
        key = self._key(caller)
        try:
            await self._redis.zadd(key, {seat: time.time() + TTL_S}, xx=True)
            await self._redis.expire(key, int(TTL_S) + 1)
        except (RedisError, OSError) as exc:
            logger.warning("WebSocket seat not renewed (Redis: %s)", type(exc).__name__)

    async def release(self, caller: str, seat: str) -> None:
        try:
            await self._redis.zrem(self._key(caller), seat)
        except (RedisError, OSError) as exc:
            logger.warning("WebSocket seat not released (Redis: %s)", type(exc).__name__)
