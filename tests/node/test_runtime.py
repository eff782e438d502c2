"""The media-node runtime driven directly: start, stop, take over, heartbeats — real
database (both backends), fake cameras at the ingest edge."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import uuid
from typing import Any

import pytest

from core.clock import utcnow
from core.consumers import ConsumerService, ConsumerState
from core.errors import RtspConnectionFailed, RtspTimeout, SsrcCaptureFailed
from core.leases import StreamLeases
from core.stream_states import StreamState
from core.streams import ProducerState, StreamService
from jobs.node.protocol import Started, Stopped, decode_reply, encode, error_to_reply
from jobs.node.runtime import MediaNodeRuntime, NodeFull
from media.errors import SourceTimeout
from tests.node.fake_ingest import FakeCameras

streams = StreamService()


async def _until(check, seconds: float = 5.0) -> None:
    """Wait until `check()` (a function or a coroutine function) is true."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not (await result if inspect.isawaitable(result := check()) else result):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_start_goes_live_with_producer_codec_and_lease(runtime, cameras, new_stream):
    stream_id = await new_stream()
    assert await runtime.start(stream_id) == Started(owner="node-a")
    row = await streams.get(stream_id)
    assert row.state is StreamState.LIVE and row.node_id == "node-a"
    assert row.started_at is not None and row.last_error is None and row.error_code is None
    assert row.codec_config["video"]["width"] == 320
    assert row.profile_level_id == cameras.made[0].info.profile_level_id
    producer = await streams.producer(stream_id)
    assert producer is not None and producer.state is ProducerState.ACTIVE
    # A second start of the same stream (a redelivered job) makes no second ingest.
    assert await runtime.start(stream_id) == Started(owner="node-a")
    assert len(cameras.made) == 1 and stream_id in runtime.pipelines
    await _until(lambda: cameras.made[0].delivered > 5)


@pytest.mark.parametrize("path, error, code", [
    ("timeout", RtspTimeout, "RTSP_TIMEOUT"),
    ("refused", RtspConnectionFailed, "RTSP_CONNECTION_FAILED"),
    ("unauthorized", RtspConnectionFailed, "RTSP_CONNECTION_FAILED"),
    ("novideo", SsrcCaptureFailed, "SSRC_CAPTURE_FAILED"),
])
async def test_a_camera_that_fails_closes_the_stream_with_its_code(runtime, new_stream, path,
                                                                    error, code):
    stream_id = await new_stream(path)
    with pytest.raises(error) as raised:
        await runtime.start(stream_id)
    row = await streams.get(stream_id)
    assert row.state is StreamState.CLOSED
    assert row.error_code == code
    assert row.last_error == f"{code}: {raised.value.message}"  # clients read the code here
    assert row.node_id is None, "the lease is released"
    assert runtime.pipelines == {} and runtime.load == 0
    # The same failure, as the API receives it from the node: the same error, same fields.
    with pytest.raises(error) as crossed:
        decode_reply(encode(error_to_reply(raised.value)), Started)
    assert (crossed.value.message, crossed.value.detail) == (raised.value.message,
                                                             raised.value.detail)


async def test_stop_closes_stream_consumers_and_ingest(runtime, cameras, new_stream):
    stream_id = await new_stream()
    await runtime.start(stream_id)
    consumers = ConsumerService()
    await consumers.add(uuid.uuid4(), stream_id, "viewer", ConsumerState.CONNECTED, "t-1")
    assert await runtime.stop(stream_id) == Stopped(stopped=True)
    assert cameras.made[0].stopped
    row = await streams.get(stream_id)
    assert row.state is StreamState.CLOSED and row.node_id is None
    assert (await streams.producer(stream_id)).state is ProducerState.CLOSED
    assert all(c.state is ConsumerState.CLOSED for c in await consumers.of_stream(stream_id))
    assert await runtime.stop(stream_id) == Stopped(stopped=False)  # idempotent


async def test_camera_drop_is_error_then_live_again(runtime, cameras, new_stream):
    stream_id = await new_stream()
    await runtime.start(stream_id)
    cameras.made[0].drop(SourceTimeout("source stalled: no data for 2 s"))
    await _until(lambda: _state(stream_id, StreamState.ERROR))
    row = await streams.get(stream_id)
    # The guide's vocabulary, code first: its client checks last_error.includes('RTSP').
    assert row.error_code == "RTSP_TIMEOUT"
    assert row.last_error == ("RTSP_TIMEOUT: Camera did not answer in time "
                              "(source stalled: no data for 2 s)")
    cameras.made[0].recover()
    await _until(lambda: _state(stream_id, StreamState.LIVE))
    assert (await streams.get(stream_id)).error_code is None
    cameras.made[0].drop()  # the camera closed the connection
    await _until(lambda: _state(stream_id, StreamState.ERROR))
    row = await streams.get(stream_id)
    assert row.error_code == "RTSP_CONNECTION_FAILED"
    assert row.last_error.startswith("RTSP_CONNECTION_FAILED: Camera connection lost")
    cameras.made[0].recover()
    await _until(lambda: _state(stream_id, StreamState.LIVE))
    assert (await streams.get(stream_id)).last_error is None


async def _state(stream_id, state: StreamState) -> bool:
    return (await streams.get(stream_id)).state is state


async def test_a_full_node_refuses_starts(database, cameras, new_stream):
    settings = dataclasses.replace(database, media=dataclasses.replace(database.media,
                                                                       node_capacity=1))
    node = MediaNodeRuntime(settings, "node-small", ingest_factory=cameras)
    try:
        await node.start(await new_stream())
        second = await new_stream()
        with pytest.raises(NodeFull):
            await node.start(second)
        assert (await streams.get(second)).state is StreamState.INITIALIZING  # for another node
    finally:
        await node.shutdown()


async def test_heartbeat_takes_over_a_lost_nodes_stream(database, runtime, cameras, new_stream):
    stream_id = await new_stream()
    other = MediaNodeRuntime(database, "node-lost", ingest_factory=FakeCameras())
    await other.start(stream_id)
    consumers = ConsumerService()
    viewer = uuid.uuid4()
    await consumers.add(viewer, stream_id, "viewer", ConsumerState.CONNECTED, "t-1")
    other.pipelines.clear()  # the process died: nothing stops, nothing renews
    await streams.transition(stream_id, StreamState.ERROR, last_error="x")
    await streams.transition(stream_id, StreamState.LIVE)
    await _expire_lease(stream_id)

    await runtime.tick()
    assert stream_id in runtime.pipelines
    assert (await consumers.get(stream_id, viewer)).state is ConsumerState.CLOSED
    await _until(lambda: _state(stream_id, StreamState.LIVE))
    row = await streams.get(stream_id)
    assert row.node_id == "node-a" and row.last_error is None
    assert cameras.made[0].info.profile_level_id == runtime.viewers(stream_id).router.profile_level_id

    await asyncio.sleep(0.3)
    await runtime.tick()  # renews the lease and reports the ingest's metrics
    row = await streams.get(stream_id)
    assert row.metrics is not None and row.metrics["viewers"] == 0 and row.checked_at is not None
    assert row.lease_expires_at > utcnow()


async def test_a_restarting_claim_is_initializing_in_the_same_write(runtime, new_stream):
    stream_id = await new_stream()
    await runtime.start(stream_id)
    runtime.pipelines.clear()  # the node died: its LIVE row stays behind
    successor = StreamLeases("node-b", 10)
    assert not await successor.claim(stream_id, restarting="lost")  # the lease still holds
    assert (await streams.get(stream_id)).state is StreamState.LIVE
    assert await StreamLeases(runtime.node_id, -1.0).claim(stream_id)  # the lease lapses
    before = (await streams.get(stream_id)).updated_at
    assert await successor.claim(stream_id, restarting="media node lost; restarting")
    row = await streams.get(stream_id)
    assert (row.state, row.node_id) == (StreamState.INITIALIZING, "node-b")
    assert row.last_error == "media node lost; restarting" and row.updated_at > before


async def _expire_lease(stream_id) -> None:
    leases = StreamLeases("node-lost", -1.0)  # a lease that ended a second ago
    assert await leases.claim(stream_id)
    assert (await streams.get(stream_id)).lease_expires_at < utcnow()


async def test_a_stream_stopped_elsewhere_ends_its_pipeline_at_the_next_beat(runtime, cameras,
                                                                             new_stream):
    stream_id = await new_stream()
    await runtime.start(stream_id)
    await streams.close(stream_id)  # the API closed it while the node did not answer
    await runtime.tick()
    assert stream_id not in runtime.pipelines and cameras.made[0].stopped


async def test_streams_starting_and_stopping_during_a_beat_do_not_break_it(runtime, cameras,
                                                                        new_stream, monkeypatch):
    """The beat reports each stream's metrics with awaits between them; a start landing
    there (10 cameras starting in the soak) made it fail with "dictionary changed size during
    iteration" and skip the rest of the beat. A stop there must not be reported either."""
    first, second, third = [await new_stream() for _ in range(3)]
    await runtime.start(first)
    await runtime.start(second)
    report = runtime.streams.report_metrics
    reported: list[uuid.UUID] = []
    during_the_beat: list[Any] = []  # what to do at the beat's first report

    async def report_and_change(stream_id, node_id, metrics):
        if during_the_beat:
            change = during_the_beat.pop()
            await change(stream_id)
        reported.append(stream_id)
        await report(stream_id, node_id, metrics)

    monkeypatch.setattr(runtime.streams, "report_metrics", report_and_change)
    during_the_beat.append(lambda _: runtime.start(third))
    await runtime.tick()
    assert set(runtime.pipelines) == {first, second, third}
    assert {first, second} <= set(reported)  # the beat went on after the start
    reported.clear()
    during_the_beat.append(lambda reporting: runtime.stop(first if reporting != first else third))
    await runtime.tick()
    stopped = first if reported[0] != first else third
    assert stopped not in reported and stopped not in runtime.pipelines
    assert set(reported) == set(runtime.pipelines)  # every other stream reported


async def test_a_hand_over_and_the_heartbeat_start_a_stream_once(database, runtime, cameras,
                                                                 new_stream):
    stream_id = await new_stream()
    other = MediaNodeRuntime(database, "node-lost", ingest_factory=FakeCameras())
    await other.start(stream_id)
    other.pipelines.clear()
    await _expire_lease(stream_id)
    taken = await asyncio.gather(runtime.adopt([stream_id]), runtime.tick(),
                                 runtime.adopt([stream_id]))
    assert taken[0] + taken[2] <= 1 and len(cameras.made) == 1
    assert stream_id in runtime.pipelines


async def test_a_draining_node_takes_nothing_and_releases_its_streams(database, runtime,
                                                                      cameras, new_stream):
    mine, orphan = await new_stream(), await new_stream()
    await runtime.start(mine)
    other = MediaNodeRuntime(database, "node-lost", ingest_factory=FakeCameras())
    await other.start(orphan)
    other.pipelines.clear()
    await _expire_lease(orphan)
    handed = await runtime.shutdown()
    assert handed == [mine] and cameras.made[0].stopped
    assert await runtime.adopt([orphan]) == 0
    with pytest.raises(NodeFull):
        await runtime.start(await new_stream())
    assert (await streams.get(mine)).lease_expires_at < utcnow()  # another node may claim it
    peer = MediaNodeRuntime(database, "node-b", ingest_factory=FakeCameras())
    try:
        assert await peer.adopt([mine, orphan]) == 2
    finally:
        await peer.shutdown()
