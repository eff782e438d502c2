"""Detection settings changes reach the followers (media nodes) through Redis pub/sub
(core/detection_changes.py), on a real Redis of this test's own."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core import detection_changes
from tests.redis_server import RedisServer


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = RedisServer(tmp_path)
    server.start()
    yield server.url
    server.stop()


async def test_each_announced_change_reaches_every_follower(redis_url: str) -> None:
    seen: list[list[str]] = [[], []]
    followers = [asyncio.create_task(detection_changes.follow(redis_url, "vas-a", got.append))
                 for got in seen]
    other = asyncio.create_task(detection_changes.follow(redis_url, "vas-b", seen[0].append))
    client = Redis.from_url(redis_url)
    try:
        channels = detection_changes.channel("vas-a"), detection_changes.channel("vas-b")
        for _ in range(100):  # until all three followers are subscribed
            if [n for _, n in await client.pubsub_numsub(*channels)] == [2, 1]:
                break
            await asyncio.sleep(0.05)
        assert [n for _, n in await client.pubsub_numsub(*channels)] == [2, 1]
        await detection_changes.announce(client, "vas-a", "0b5d6f1e-camera")
        await detection_changes.announce(client, "vas-a", detection_changes.GLOBAL)
        for _ in range(100):
            if all(len(got) == 2 for got in seen):
                break
            await asyncio.sleep(0.05)
        # In order, to every follower of the namespace, and nothing from another one.
        assert seen == [["0b5d6f1e-camera", "global"]] * 2
    finally:
        for task in (*followers, other):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await client.aclose()


async def test_an_announcement_without_redis_is_logged_not_raised() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        await detection_changes.announce(client, "vas-a", "global")
    finally:
        await client.aclose()
