"""Failed-login throttling shared by every API process, kept in Redis."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from core.errors import RateLimited


class LoginThrottle:
    """At most `limit` failed logins per client id within `window_s`; then 429 until it lapses."""

    def __init__(
        self, redis: Redis, namespace: str, limit: int, window_s: int, *, subject: str = "client"
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._limit = limit
        self._window_s = window_s
        self._subject = subject  # named in the 429 message: "client", "account"

    def _key(self, client_id: str) -> str:
        # Hash the id: it is caller-chosen text and must not shape our key space.
        digest = hashlib.sha256(client_id.encode()).hexdigest()[:32]
        return f"{self._namespace}:login-failures:{digest}"

    async def check(self, client_id: str) -> None:
        """Raise `RateLimited` while the client id is locked out."""
        key = self._key(client_id)
        count = await self._redis.get(key)
        if count is not None and int(count) >= self._limit:
            ttl = await self._redis.ttl(key)
            raise RateLimited(
                f"Too many failed login attempts for this {self._subject}; try again later",
                retry_after=max(int(ttl), 1),
            )

    async def failed(self, client_id: str) -> None:
        """Count one failure; the window starts at the first failure."""
        key = self._key(client_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            # SET NX EX then INCR: the window starts at the first failure (works on
            # Redis 6.2, which the embedded server runs and which lacks EXPIRE NX).
            pipe.set(key, 0, ex=self._window_s, nx=True)
            pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, client_id: str) -> None:
        """A good login clears the count."""
        await self._redis.delete(self._key(client_id))
