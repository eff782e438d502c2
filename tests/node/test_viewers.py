"""Viewer requests on a node: consume, connect, close and WHEP, their rows, and their
refusals as the API receives them (a `core.errors` class crossing the protocol)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from core.consumers import ConsumerService, ConsumerState
from core.errors import Conflict, InvalidInput, NotFound
from jobs.node.protocol import (
    AddCandidate,
    CloseConsumer,
    Connect,
    Consume,
    Consumed,
    Done,
    WhepOffer,
    WhepPatch,
    decode,
    decode_reply,
    encode,
    error_to_reply,
)
from media.webrtc import router_rtp_capabilities

consumers = ConsumerService()


async def _across(runtime, request, reply):
    """The request as the actor gets it, the reply (or refusal) as the API decodes it."""
    try:
        answer = await runtime.viewer(decode(encode(request), type(request)))
    except (InvalidInput, NotFound, Conflict) as exc:
        return decode_reply(encode(error_to_reply(exc)), reply)
    return decode_reply(encode(answer), reply)


def _client_caps(profile: str | None) -> dict:
    router = router_rtp_capabilities(profile)
    return {"codecs": [router["codecs"][0]], "headerExtensions": router["headerExtensions"]}


async def test_consume_then_close_keeps_the_rows(runtime, new_stream):
    stream_id = await new_stream()
    await runtime.start(stream_id)
    router = runtime.viewers(stream_id).router
    consumer_id = uuid.uuid4()
    consumed = await _across(runtime, Consume(
        stream_id=stream_id, consumer_id=consumer_id, client_id="ruth",
        rtp_capabilities=_client_caps(router.profile_level_id)), Consumed)
    assert consumed.consumer_id == consumer_id
    assert consumed.transport["id"] == f"transport-{consumer_id}"
    assert consumed.transport["ice_parameters"]["iceLite"] is True
    assert consumed.rtp_parameters["codecs"][0]["mimeType"] == "video/H264"
    row = await consumers.get(stream_id, consumer_id)
    assert row.state is ConsumerState.NEW and row.client_id == "ruth"
    assert router.count == 1 and runtime.viewers(stream_id).count == 1

    with pytest.raises(InvalidInput, match="dtls_parameters"):
        await _across(runtime, Connect(stream_id=stream_id, consumer_id=consumer_id,
                                       dtls_parameters={"role": "client"}), Done)
    assert await _across(runtime, AddCandidate(stream_id=stream_id, consumer_id=consumer_id,
                                               candidate=None), Done) == Done()

    assert await _across(runtime, CloseConsumer(stream_id=stream_id, consumer_id=consumer_id),
                         Done) == Done()
    for _ in range(100):  # the Router's on_close writes the row from a task
        if (await consumers.get(stream_id, consumer_id)).state is ConsumerState.CLOSED:
            break
        await asyncio.sleep(0.02)
    closed = await consumers.get(stream_id, consumer_id)
    assert closed.state is ConsumerState.CLOSED and closed.closed_at is not None
    assert router.count == 0


async def test_refusals_cross_as_their_error_classes(runtime, new_stream):
    stream_id = await new_stream()
    await runtime.start(stream_id)
    with pytest.raises(InvalidInput, match="rtp_capabilities cannot receive this stream"):
        await _across(runtime, Consume(stream_id=stream_id, consumer_id=uuid.uuid4(),
                                       client_id="x", rtp_capabilities={"codecs": []}), Consumed)
    unknown = uuid.uuid4()
    with pytest.raises(NotFound, match=f"Consumer {unknown} not found"):
        await _across(runtime, CloseConsumer(stream_id=stream_id, consumer_id=unknown), Done)
    with pytest.raises(NotFound, match="WHEP session"):
        await _across(runtime, WhepPatch(stream_id=stream_id, session_id=unknown,
                                         sdpfrag="a=end-of-candidates"), Done)
    with pytest.raises(InvalidInput, match="SDP offer"):
        await _across(runtime, WhepOffer(stream_id=stream_id, session_id=uuid.uuid4(),
                                         offer_sdp="not sdp"), Done)
    assert await consumers.of_stream(stream_id) == []  # refused requests leave no rows
    elsewhere = uuid.uuid4()
    with pytest.raises(Conflict, match="not running on its node"):
        await _across(runtime, CloseConsumer(stream_id=elsewhere, consumer_id=unknown), Done)


async def test_stopping_the_stream_closes_its_viewers(runtime, new_stream):
    stream_id = await new_stream()
    await runtime.start(stream_id)
    profile = runtime.viewers(stream_id).router.profile_level_id
    ids = [uuid.uuid4() for _ in range(3)]
    for consumer_id in ids:
        await runtime.viewer(Consume(stream_id=stream_id, consumer_id=consumer_id,
                                     client_id="v", rtp_capabilities=_client_caps(profile)))
    router = runtime.viewers(stream_id).router
    assert router.count == 3
    await runtime.stop(stream_id)
    assert router.count == 0
    rows = await consumers.of_stream(stream_id)
    assert sorted(r.id for r in rows) == sorted(ids)
    assert all(r.state is ConsumerState.CLOSED for r in rows)


async def test_viewers_beyond_the_stream_limit_are_refused_with_conflict(
    database, cameras, new_stream
):
    """VAS_MAX_CONSUMERS_PER_STREAM counts consumers and WHEP sessions together; a refused
    request leaves no row, and a closed viewer makes room again."""
    import dataclasses

    from jobs.node.runtime import MediaNodeRuntime

    limited = dataclasses.replace(
        database, media=dataclasses.replace(database.media, max_consumers_per_stream=2))
    node = MediaNodeRuntime(limited, "node-limited", ingest_factory=cameras)
    try:
        stream_id = await new_stream()
        await node.start(stream_id)
        caps = _client_caps(node.viewers(stream_id).router.profile_level_id)
        admitted = []
        for _ in range(2):
            consumer_id = uuid.uuid4()
            await _across(node, Consume(stream_id=stream_id, consumer_id=consumer_id,
                                        client_id="ruth", rtp_capabilities=caps), Consumed)
            admitted.append(consumer_id)
        with pytest.raises(Conflict, match="limit of 2 viewers"):
            await _across(node, Consume(stream_id=stream_id, consumer_id=uuid.uuid4(),
                                        client_id="ruth", rtp_capabilities=caps), Consumed)
        with pytest.raises(Conflict, match="VAS_MAX_CONSUMERS_PER_STREAM"):
            await _across(node, WhepOffer(stream_id=stream_id, session_id=uuid.uuid4(),
                                          offer_sdp="v=0"), Done)
        assert len(await consumers.of_stream(stream_id)) == 2
        await _across(node, CloseConsumer(stream_id=stream_id, consumer_id=admitted[0]), Done)
        await _across(node, Consume(stream_id=stream_id, consumer_id=uuid.uuid4(),
                                    client_id="ruth", rtp_capabilities=caps), Consumed)
    finally:
        await node.shutdown()


async def test_a_consumer_refusing_the_cameras_profile_gets_the_baseline_router(
        runtime, new_stream):
    """A High camera (`transcode: auto`): a consumer that takes High is served by the
    stream's Router and runs no transcoder; one that lists only constrained baseline is
    served by the baseline Router, whose transcoder runs while it watches."""
    stream_id = await new_stream("high")
    await runtime.start(stream_id)
    viewers = runtime.viewers(stream_id)
    pipeline = runtime.pipelines[stream_id]
    high = viewers.router.profile_level_id
    assert high.startswith("64") and viewers.baseline is not None
    assert viewers.baseline.profile_level_id == "42e01f"
    assert pipeline.transcoder is not None and not pipeline.transcoder.running

    passthrough = uuid.uuid4()
    consumed = await _across(runtime, Consume(
        stream_id=stream_id, consumer_id=passthrough, client_id="high",
        rtp_capabilities=_client_caps(high)), Consumed)
    assert consumed.rtp_parameters["codecs"][0]["parameters"]["profile-level-id"] == high
    assert (viewers.router.count, viewers.baseline.count) == (1, 0)
    assert not pipeline.transcoder.running

    baseline = uuid.uuid4()
    consumed = await _across(runtime, Consume(
        stream_id=stream_id, consumer_id=baseline, client_id="baseline",
        rtp_capabilities=_client_caps("42e01f")), Consumed)
    assert consumed.rtp_parameters["codecs"][0]["parameters"]["profile-level-id"] == "42e01f"
    assert (viewers.router.count, viewers.baseline.count, viewers.count) == (1, 1, 2)
    assert pipeline.transcoder.running

    await _across(runtime, CloseConsumer(stream_id=stream_id, consumer_id=baseline), Done)
    assert viewers.baseline.count == 0 and not pipeline.transcoder.running
    # Not H.264 at all: refused with the stream's own reason; no transcoder started for it.
    starts = pipeline.transcoder.starts
    with pytest.raises(InvalidInput, match=r"no H\.264"):
        await _across(runtime, Consume(
            stream_id=stream_id, consumer_id=uuid.uuid4(), client_id="vp8",
            rtp_capabilities={"codecs": [], "headerExtensions": []}), Consumed)
    assert pipeline.transcoder.starts == starts and not pipeline.transcoder.running
    assert viewers.router.count == 1  # the High consumer keeps watching
    await runtime.stop(stream_id)
    assert viewers.count == 0
