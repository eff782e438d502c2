"""The Dramatiq broker, built explicitly: Redis for messages, Redis for results."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from core.settings import RedisSettings

# Shared queues; each media node also serves a control queue of its own (`node_queue`).
DEFAULT_QUEUE = "default"
MEDIA_START_QUEUE = "media-start"
DETECT_QUEUE = "detect"  # object-detection jobs from media nodes to detection workers
RESULT_TTL_MS = 60_000


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
    broker = RedisBroker(url=settings.url, namespace=namespace,
                         heartbeat_timeout=settings.heartbeat_timeout_ms,
                         maintenance_chance=settings.maintenance_chance)
    # Dramatiq names a result by the MD5 of its namespaced key unless told otherwise: with
    # prefixed keys every result lives under the deployment's namespace like the rest.
    backend = RedisBackend(url=settings.url, namespace=f"{settings.namespace}:results",
                           use_namespace_prefix_keys=True)
    broker.add_middleware(Results(backend=backend, result_ttl=RESULT_TTL_MS))
    dramatiq.set_broker(broker)
    return broker
