"""The node's bound on pending object-detection jobs (jobs/client.py `send_detection`)
counts the jobs waiting on the `detect` queue and the failed ones waiting for their retry
on its delay queue (`detect.DQ`, where Dramatiq's Retries middleware puts them), on a real
Redis of this test's own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest

from core.settings import RedisSettings
from jobs.actors import declare_actors
from jobs.broker import DETECT_QUEUE, build_broker
from jobs.client import JobClient
from jobs.node.protocol import DetectFrame, encode
from tests.redis_server import RedisServer

BOUND = 3


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[JobClient]:
    server = RedisServer(tmp_path)
    server.start()
    broker = build_broker(RedisSettings(url=server.url, namespace="vas-bound"))
    try:
        yield JobClient(broker, declare_actors(broker))
    finally:
        broker.close()
        server.stop()


def frame() -> DetectFrame:
    return DetectFrame(camera_id=uuid.uuid4(), stream_id=uuid.uuid4(), wallclock=1.0,
                       frame_size=(640, 360), source_size=(640, 360), motion=[],
                       jpeg=b"\xff\xd8")


def test_jobs_waiting_for_a_retry_count_against_the_bound(jobs: JobClient) -> None:
    assert jobs.send_detection(frame(), BOUND) and jobs.send_detection(frame(), BOUND)
    assert jobs.detect_depth() == 2
    # A job that failed waits for its retry on the delay queue, as Retries enqueues it.
    broker = jobs._broker
    retry = dramatiq.Message(queue_name=DETECT_QUEUE, actor_name="detect_frame",
                             args=(encode(frame()),), kwargs={}, options={"retries": 1})
    broker.enqueue(retry, delay=60_000)
    assert broker.client.hlen(f"{broker.namespace}:{DETECT_QUEUE}.DQ.msgs") == 1
    assert jobs.detect_depth() == BOUND
    assert not jobs.send_detection(frame(), BOUND)  # 2 waiting + 1 retry: at the bound
    assert broker.client.hlen(f"{broker.namespace}:{DETECT_QUEUE}.msgs") == 2

    # Once the waiting jobs are taken (the retry still pending), a frame is sent again.
    broker.client.delete(*(f"{broker.namespace}:{DETECT_QUEUE}{key}" for key in ("", ".msgs")))
    assert jobs.detect_depth() == 1
    assert jobs.send_detection(frame(), BOUND)
