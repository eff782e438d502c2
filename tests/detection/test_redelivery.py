"""A detection worker killed in the middle of a job loses no event: Dramatiq gives its
unacked message to another worker once the dead one's heartbeat lapses, and the job is
idempotent (reruns merge into one event).

To hold the job mid-way without guessing at timings, the test takes the merge lock of the
camera's `motion` events itself: the worker's job waits on it, the test SIGKILLs the worker,
releases the lock, and starts a second worker. Only that second worker gets a shortened
Dramatiq heartbeat timeout (2 s instead of 60 s) and runs the broker's maintenance (which
re-queues dead workers' messages) on every command instead of on 0.1 % of them.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from core.events import EventFilter, EventService
from tests.detection.helpers import (
    RIGHT_SIDE,
    SCENE,
    set_detection,
    start_stream,
    wait_counters,
)
from tests.detection.test_events import wait_events
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow
MOTION_ONLY = {
    "detectionInterval": 500,
    "motionDetection": {"enabled": True, "sensitivity": 0.5, "minArea": 100},
    "objectTypes": [{"type": kind, "enabled": False} for kind in ("person", "vehicle", "animal")],
}


def held_messages(client: redis.Redis, namespace: str) -> int:
    """Messages of the `detect` queue that some worker took and has not acked."""
    keys = client.keys(f"{namespace}:dramatiq:__acks__.*.detect")
    return sum(int(client.scard(key)) for key in keys)


async def test_a_killed_detection_worker_loses_no_event(
    client, admin_token, settings, media_node, start_process, start_camera
):
    first = start_process("worker", "serving queues", VAS_WORKER_QUEUES="detect")
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE)
    device = await add_device(client, camera.url)
    await set_detection(client, admin_token, device, MOTION_ONLY)
    stream = await start_stream(client, device)
    await wait_counters(stream, lambda c: c["samples"] >= 4)

    rds = redis.Redis.from_url(settings.redis.url or "")
    lock = rds.lock(f"{settings.redis.namespace}:detect-merge:{device}:motion", timeout=120)
    assert lock.acquire(blocking=False)
    try:
        camera.set_motion(True)
        await wait_counters(stream, lambda c: c["jobs_sent"] >= 1)
        camera.set_motion(False)
        deadline = time.monotonic() + 30
        while held_messages(rds, settings.redis.namespace) == 0:
            assert time.monotonic() < deadline, "the worker never took a detect job"
            time.sleep(0.05)
        first.proc.kill()  # SIGKILL: no clean shutdown, no ack, no requeue by the worker
        first.proc.wait(10)
    finally:
        lock.release()
    events = EventService(settings.server.data_dir)
    rows, total = await events.page(EventFilter(camera_id=uuid.UUID(device)), 1, 10)
    assert total == 0  # the killed worker wrote nothing

    start_process("worker", "serving queues", VAS_WORKER_QUEUES="detect",
                  VAS_BROKER_HEARTBEAT_TIMEOUT_MS="2000",
                  VAS_BROKER_MAINTENANCE_CHANCE="1000000")
    [event] = await wait_events(events, device, 1, seconds=60)
    assert event.type == "motion" and str(event.stream_id) == stream
    deadline = time.monotonic() + 30
    while held_messages(rds, settings.redis.namespace) or rds.hlen(
            f"{settings.redis.namespace}:dramatiq:detect.msgs"):
        assert time.monotonic() < deadline, "redelivered jobs were not all done"
        time.sleep(0.1)
    rows, total = await events.page(EventFilter(camera_id=uuid.UUID(device)), 1, 10)
    assert total == 1 and rows[0].id == event.id  # every rerun merged into the one event
    rds.close()
