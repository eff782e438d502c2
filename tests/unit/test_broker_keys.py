"""Every key a job leaves in Redis is under VAS_REDIS_NAMESPACE, its result included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from dramatiq import Worker

from core.settings import RedisSettings
from jobs.actors import ACTORS
from jobs.broker import SHARED_QUEUES, build_broker, node_queue
from tests.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own: the whole keyspace is what the job left."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def test_a_job_and_its_result_leave_keys_only_under_the_namespace(
    redis_server: RedisServer,
) -> None:
    namespace = "vas-keys"
    broker = build_broker(RedisSettings(url=redis_server.url, namespace=namespace))

    @dramatiq.actor(actor_name="echo", broker=broker, store_results=True,
                    queue_name=node_queue("n1"))
    def echo(value: str) -> str:
        return value.upper()

    worker = Worker(broker, worker_timeout=50)
    worker.start()
    try:
        message = echo.send("hello")
        assert message.get_result(block=True, timeout=10_000) == "HELLO"
    finally:
        worker.stop()
        broker.close()

    keys = redis_server.all_keys()
    assert keys, "the job must have left its queue and result keys"
    assert [key for key in keys if not key.startswith(f"{namespace}:")] == []
    result_keys = [key for key in keys if message.message_id in key]
    assert result_keys and all(k.startswith(f"{namespace}:results:") for k in result_keys)


def test_every_actor_is_declared_on_a_shared_queue() -> None:
    """The API's /metrics reports the depth of SHARED_QUEUES: an actor on a queue outside
    them would wait unseen by dashboards and autoscaling."""
    used = {options["queue_name"] for _, options in ACTORS.values()}
    assert used == set(SHARED_QUEUES)
