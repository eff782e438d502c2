"""`GET /metrics` as Prometheus reads it: cluster gauges from reality (a LIVE stream through a
real media node, a message waiting in a queue), the API's own request counters, the token."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import dramatiq
import httpx
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.parser import text_string_to_metric_families

from core.clock import utcnow
from core.tables import MediaNode
from jobs.broker import DETECT_QUEUE, node_queue
from jobs.client import DETECT_ACTOR
from jobs.node.protocol import DetectFrame, encode
from tests.conftest import bearer
from tests.vas_fixtures import add_device


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_cluster_gauges_follow_a_live_stream_and_a_waiting_job(client, admin_token, app,
                                                                    media_node, start_camera):
    camera = start_camera()
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
    assert started.status_code == 200, started.text
    # No worker runs: a snapshot job of a recorded moment waits in the default queue.
    await app.state.services.jobs.purge_recordings()

    for _ in range(100):  # the node reports its load with its next heartbeat (2 s)
        response = await client.get("/metrics")
        assert response.status_code == 200
        samples = _samples(response.text)
        if samples[("vas_media_node_streams", ())] == 1:
            break
        await asyncio.sleep(0.1)
    assert response.headers["content-type"].startswith("text/plain")
    assert samples[("vas_streams", (("state", "LIVE"),))] == 1
    assert samples[("vas_streams", (("state", "ERROR"),))] == 0
    assert samples[("vas_media_nodes", ())] == 1
    assert samples[("vas_media_node_streams", ())] == 1
    assert samples[("vas_media_node_capacity_streams", ())] == 16
    assert samples[("vas_queue_messages", (("queue", "default"),))] == 1
    assert samples[("vas_queue_messages", (("queue", "media-start"),))] == 0
    assert samples[("vas_queue_messages", (("queue", "detect"),))] >= 0  # reported
    assert samples[("vas_consumers", (("state", "CONNECTED"),))] == 0
    assert samples[("vas_recordings_bytes", ())] >= 0
    # The API's own requests: the start-stream above, counted under its route template.
    route = "/api/v1/devices/{device_id}/start-stream"
    assert samples[("vas_api_requests_total",
                    (("method", "POST"), ("route", route), ("status", "200")))] == 1
    assert samples[("vas_api_requests_total",
                    (("method", "GET"), ("route", "/metrics"), ("status", "200")))] >= 1
    assert samples[("vas_api_request_duration_seconds_count",
                    (("method", "POST"), ("route", route)))] == 1
    assert not any("stream_id" in dict(labels) or "consumer_id" in dict(labels)
                   for _, labels in samples)  # bounded label sets

    stopped = await client.post(f"/api/v1/devices/{device_id}/stop-stream")
    assert stopped.json()["stopped"] is True
    after = _samples((await client.get("/metrics")).text)
    assert after[("vas_streams", (("state", "LIVE"),))] == 0
    assert after[("vas_streams", (("state", "CLOSED"),))] == 1


async def test_the_detect_queue_counts_waiting_and_delayed_detection_jobs(client, app):
    """No detector runs: a detection job sent the way a node sends it waits in `detect`, and
    one delayed (as a retry is) waits in its delay queue; both count."""
    jobs = app.state.services.jobs
    redis_settings = app.state.services.settings.redis
    frame = DetectFrame(camera_id=uuid.uuid4(), stream_id=uuid.uuid4(), wallclock=time.time(),
                        frame_size=(640, 360), source_size=(1280, 720),
                        motion=[(10, 20, 30, 40)], jpeg=b"\xff\xd8\xff\xd9")
    before = _samples((await client.get("/metrics")).text)
    assert before[("vas_queue_messages", (("queue", "detect"),))] == 0
    assert await asyncio.to_thread(jobs.send_detection, frame, 100)
    waiting = _samples((await client.get("/metrics")).text)
    assert waiting[("vas_queue_messages", (("queue", "detect"),))] == 1

    broker = RedisBroker(url=redis_settings.url, namespace=f"{redis_settings.namespace}:dramatiq")
    try:
        await asyncio.to_thread(broker.enqueue, dramatiq.Message(
            queue_name=DETECT_QUEUE, actor_name=DETECT_ACTOR, args=(encode(frame),), kwargs={},
            options={}), delay=60_000)
    finally:
        broker.close()
    delayed = _samples((await client.get("/metrics")).text)
    assert delayed[("vas_queue_messages", (("queue", "detect"),))] == 2
    assert delayed[("vas_queue_messages", (("queue", "default"),))] == 0


async def test_a_metrics_token_puts_the_endpoint_behind_a_bearer(settings_env, backend):
    from api.app import create_app
    from core.settings import load_settings

    app = create_app(load_settings({**settings_env, "VAS_METRICS_TOKEN": "scrape-me"}))
    answers: dict[str, int] = {}

    async def run() -> None:
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://vas.test") as http:
                answers["none"] = (await http.get("/metrics")).status_code
                answers["wrong"] = (await http.get("/metrics",
                                                   headers=bearer("nope"))).status_code
                answers["right"] = (await http.get("/metrics",
                                                   headers=bearer("scrape-me"))).status_code

    await asyncio.create_task(run())
    assert answers == {"none": 401, "wrong": 401, "right": 200}


async def test_a_node_past_its_lease_leaves_the_gauges_and_its_queue_series(client, app):
    """A dead node's streams and control queue count until its lease lapses, then no longer:
    none of its figures stays in a series (the queue series drops to 0, not to its last
    depth, when it was the last node)."""
    services = app.state.services
    await services.nodes.register("gauge-node", node_queue("gauge-node"), 12)
    await services.nodes.heartbeat("gauge-node", 7)
    namespace = f"{services.settings.redis.namespace}:dramatiq"
    await services.redis.rpush(f"{namespace}:{node_queue('gauge-node')}", "a message")
    alive = _samples((await client.get("/metrics")).text)
    assert alive[("vas_media_nodes", ())] == 1
    assert alive[("vas_media_node_streams", ())] == 7
    assert alive[("vas_queue_messages", (("queue", "media-node"),))] == 1

    lapsed = utcnow() - timedelta(seconds=services.settings.media.lease_s + 1)
    await MediaNode.update({MediaNode.heartbeat_at: lapsed}).where(
        MediaNode.node_id == "gauge-node")
    dead = _samples((await client.get("/metrics")).text)
    assert dead[("vas_media_nodes", ())] == 0
    assert dead[("vas_media_node_streams", ())] == 0
    assert dead[("vas_media_node_capacity_streams", ())] == 0
    assert dead[("vas_queue_messages", (("queue", "media-node"),))] == 0
