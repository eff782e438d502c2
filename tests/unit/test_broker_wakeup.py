"""Idle consumers block on a wake-up list instead of polling: a message enqueued while a
consumer waits is picked up before its wait runs out, and the list stays short."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
import redis

from core.settings import RedisSettings
from jobs.broker import MAX_IDLE_BLOCK_MS, WAKE_TOKENS_KEPT, WakingRedisBroker, build_broker
from tests.conftest import REDIS_URL


@pytest.fixture
def broker() -> Iterator[WakingRedisBroker]:
    namespace = f"vas-wake-{uuid.uuid4().hex[:8]}"
    built = build_broker(RedisSettings(url=REDIS_URL, namespace=namespace))
    assert isinstance(built, WakingRedisBroker)
    yield built
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()
    built.close()


def test_a_waiting_consumer_takes_a_message_at_once(broker: WakingRedisBroker) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    broker.declare_queue(queue)

    @dramatiq.actor(actor_name=f"noop_{queue}", broker=broker, queue_name=queue)
    def noop() -> None:
        return None

    consumer = broker.consume(queue, prefetch=1, timeout=60_000)
    assert next(consumer) is None  # empty: the next call waits on the wake-up list
    sent_at: list[float] = []

    def send() -> None:
        time.sleep(0.2)
        sent_at.append(time.monotonic())
        noop.send()

    sender = threading.Thread(target=send)
    sender.start()
    began = time.monotonic()
    message = next(consumer)
    sender.join()
    assert message is not None and message.actor_name == f"noop_{queue}"
    # Polling would only have looked again once the wait ran out (MAX_IDLE_BLOCK_MS).
    assert time.monotonic() - began < MAX_IDLE_BLOCK_MS / 1000
    consumer.ack(message)
    consumer.close()


def test_an_idle_consumer_waits_between_fetches_and_the_list_stays_short(
    broker: WakingRedisBroker,
) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    broker.declare_queue(queue)
    consumer = broker.consume(queue, prefetch=1, timeout=300)
    began = time.monotonic()
    polls = [next(consumer) for _ in range(4)]
    assert polls == [None] * 4
    assert time.monotonic() - began >= 0.9  # three waits of 300 ms, not a busy loop
    consumer.close()

    @dramatiq.actor(actor_name=f"noop_{queue}", broker=broker, queue_name=queue)
    def noop() -> None:
        return None

    for _ in range(WAKE_TOKENS_KEPT * 3):
        noop.send()
    assert broker.client.llen(broker.wake_key(queue)) == WAKE_TOKENS_KEPT
    assert broker.client.pttl(broker.wake_key(queue)) > 0
