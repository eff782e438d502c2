"""The Dramatiq broker, built explicitly: Redis for messages, Redis for results."""

from __future__ import annotations

import time
from typing import Any

import dramatiq
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import dq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from core.settings import RedisSettings

# Shared queues; each media node also serves a control queue of its own (`node_queue`).
DEFAULT_QUEUE = "default"
MEDIA_START_QUEUE = "media-start"
DETECT_QUEUE = "detect"  # object-detection jobs from media nodes to detection workers
# Every shared queue an actor is declared on (jobs.actors); the API's /metrics reports each.
SHARED_QUEUES = (DEFAULT_QUEUE, MEDIA_START_QUEUE, DETECT_QUEUE)
RESULT_TTL_MS = 60_000
# An idle consumer blocks this long at most on its queue's wake-up list (well below
# redis-py's default socket timeout of 5 s), then fetches anyway: a lost wake-up costs this
# much, and so may an ack or a due delayed message, which Dramatiq's consumer thread
# handles between two waits.
MAX_IDLE_BLOCK_MS = 1000
WAKE_TOKENS_KEPT = 16  # a wake-up list nobody pops stays this short


def node_queue(node_id: str) -> str:
    """The control queue of one media node."""
    return f"media-node.{node_id}"


def build_broker(settings: RedisSettings) -> RedisBroker:
    """A RedisBroker with the Results middleware, registered as Dramatiq's global broker.

    Never rely on `dramatiq.get_broker()`'s fallback: it would try RabbitMQ on localhost.
    """
    if settings.url is None:
        raise RuntimeError("REDIS_URL is not set and no embedded Redis was started")
    namespace = f"{settings.namespace}:dramatiq"
    broker = WakingRedisBroker(url=settings.url, namespace=namespace,
                         heartbeat_timeout=settings.heartbeat_timeout_ms,
                         maintenance_chance=settings.maintenance_chance)
    # Dramatiq names a result by the MD5 of its namespaced key unless told otherwise: with
    # prefixed keys every result lives under the deployment's namespace like the rest.
    backend = RedisBackend(url=settings.url, namespace=f"{settings.namespace}:results",
                           use_namespace_prefix_keys=True)
    broker.add_middleware(Results(backend=backend, result_ttl=RESULT_TTL_MS))
    dramatiq.set_broker(broker)
    return broker


class WakingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker whose idle consumers block instead of polling.

    Dramatiq's Redis consumers poll an empty queue with a back-off of up to the worker's
    timeout, so a media node that must answer control calls in milliseconds polled four
    queues (two and their delay queues) every 50 ms, some 4 % of a core with nothing to do
    (docs/performance.md, "Idle media node"). Here every enqueue also pushes a token on the
    queue's wake-up list, and an idle consumer waits on that list with a blocking pop
    (at most `MAX_IDLE_BLOCK_MS`, or the worker's timeout if shorter) before it fetches
    again: a message is picked up at once, and an idle consumer costs one fetch and one pop
    per wait.
    """

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _WakingConsumer

    def wake_key(self, queue_name: str) -> str:
        return f"{self.namespace}:wake:{queue_name}"

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        message = super().enqueue(message, delay=delay)
        key = self.wake_key(dq_name(message.queue_name) if delay is not None
                            else message.queue_name)
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(key, 1)
        pipe.ltrim(key, -WAKE_TOKENS_KEPT, -1)
        pipe.pexpire(key, max(self.heartbeat_timeout, 60_000))
        pipe.execute()
        return message

    def wait_for_wake(self, queue_name: str, timeout_ms: int) -> None:
        """Block until a message is enqueued on `queue_name` or `timeout_ms` passes."""
        try:
            self.client.blpop([self.wake_key(queue_name)], timeout=timeout_ms / 1000)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None


class _WakingConsumer(_RedisConsumer):
    """Fetches like Dramatiq's consumer, but waits for a wake-up between empty fetches
    instead of sleeping its back-off."""

    def __init__(self, broker: WakingRedisBroker, queue_name: str, prefetch: int,
                 timeout: int) -> None:
        # The parent's back-off sleep after an empty fetch: at most 1 ms (we block below).
        super().__init__(broker, queue_name, prefetch, 1)
        self.block_ms = max(1, min(timeout, MAX_IDLE_BLOCK_MS))
        self.idle = False

    def __next__(self) -> Any:
        if self.idle and not self.message_cache:
            if self.outstanding_message_count >= self.prefetch:
                time.sleep(0.02)  # busy, not idle: the parent fetches once work is done
            else:
                self.broker.wait_for_wake(self.queue_name, self.block_ms)
        message = super().__next__()
        self.idle = message is None
        return message
