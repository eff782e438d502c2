"""A media node that answers a control call with a failure, through the real plumbing: a real
Dramatiq worker on real Redis serves the node's control queue, the actors run, and their
failure travels back as a result. The caller sees the guide's MEDIASOUP_ERROR, and a failed
stop is STREAM_STOP_FAILED with the stream closed all the same.

The worker here runs the real actors without a node runtime behind them, so every node call
fails inside the node (the same way an unexpected error in a node would)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import dramatiq
import pytest

from core.errors import MediaInternalError, StreamStopFailed
from core.leases import StreamLeases
from core.nodes import NodeRegistry
from core.settings import Settings
from core.stream_states import StreamState
from core.streams import StreamService
from jobs.actors import declare_actors
from jobs.broker import build_broker
from jobs.client import JobClient
from jobs.context import JobContext, install
from jobs.control import StreamControl
from jobs.node.protocol import Consume

QUEUE = "media-node.broken"


@pytest.fixture
async def broken_node(database: Settings) -> AsyncIterator[tuple[JobClient, NodeRegistry]]:
    broker = build_broker(database.redis)
    actors = declare_actors(broker)
    broker.declare_queue(QUEUE)
    install(JobContext(settings=database, loop=asyncio.get_running_loop(), node_id="broken"))
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=2, worker_timeout=50)
    worker.start()
    nodes = NodeRegistry(database.media.lease_s)
    await nodes.register("broken", QUEUE, 4)
    try:
        yield JobClient(broker, actors), nodes
    finally:
        await asyncio.to_thread(worker.stop, 5_000)
        broker.close()
        install(None)


async def _live_on_broken_node(new_stream) -> uuid.UUID:
    stream_id = await new_stream()
    assert await StreamLeases("broken", 10).claim(stream_id)
    streams = StreamService()
    await streams.transition(stream_id, StreamState.READY)
    await streams.transition(stream_id, StreamState.LIVE)
    return stream_id


async def test_a_failed_node_call_is_mediasoup_error(broken_node, new_stream):
    jobs, nodes = broken_node
    stream_id = await _live_on_broken_node(new_stream)
    (node,) = await nodes.alive()
    with pytest.raises(MediaInternalError) as caught:
        await jobs.consume(node, Consume(stream_id=stream_id, consumer_id=uuid.uuid4(),
                                         client_id="x", rtp_capabilities={}))
    assert caught.value.error_code == "MEDIASOUP_ERROR"


async def test_a_failed_stop_is_stream_stop_failed_and_the_stream_closes(broken_node,
                                                                        new_stream):
    jobs, nodes = broken_node
    streams = StreamService()
    stream_id = await _live_on_broken_node(new_stream)
    control = StreamControl(streams, nodes, jobs)
    with pytest.raises(StreamStopFailed) as caught:
        await control.stop(stream_id)
    assert caught.value.error_code == "STREAM_STOP_FAILED"
    assert (await streams.get(stream_id)).state is StreamState.CLOSED
    assert await control.stop(stream_id) is False  # a retry finds it closed
