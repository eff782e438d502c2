"""End to end on 127.0.0.1: libx264 packets → Fanout → ConsumerTransport (ICE-lite, DTLS
server, RTP sender) → a browser-like aiortc ORTC client that decodes the frames."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time

import pytest

from media.webrtc.consumer_transport import ConsumerTransport
from media.webrtc.errors import InvalidRemoteParameters, TransportStateError
from media.webrtc.settings import WebRtcSettings
from tests.media.webrtc.clip import FPS, GOP, Stream
from tests.media.webrtc.conftest import OpenConsumer
from tests.media.webrtc.ortc_client import SERVER_PORTS

pytestmark = pytest.mark.asyncio


async def test_parameters_have_the_shape_mediasoup_client_reads(
    stream: Stream, server_settings: WebRtcSettings
) -> None:
    track = stream.fanout.subscribe()
    rtp = {"encodings": [{"ssrc": 111222333}]}
    transport = await ConsumerTransport.create(
        settings=server_settings, track=track, rtp_parameters=rtp
    )
    try:
        params = transport.parameters()
        assert params["id"] == transport.id
        ice = params["ice_parameters"]
        assert ice["iceLite"] is True
        assert len(ice["usernameFragment"]) >= 4 and len(ice["password"]) >= 22
        [candidate] = params["ice_candidates"]
        assert candidate["ip"] == candidate["address"] == "127.0.0.1"
        assert SERVER_PORTS[0] <= candidate["port"] <= SERVER_PORTS[1]
        assert candidate["type"] == "host" and candidate["protocol"] == "udp"
        assert isinstance(candidate["priority"], int) and candidate["foundation"]
        dtls = params["dtls_parameters"]
        assert dtls["role"] == "auto"
        [fingerprint] = dtls["fingerprints"]
        assert fingerprint["algorithm"] == "sha-256"
        assert len(fingerprint["value"].split(":")) == 32
        assert transport.state == "new"
    finally:
        await transport.close()
    assert transport.state == "closed"
    assert track.readyState == "ended"
    assert stream.fanout.consumers == 0


async def test_connect_validates_and_returns_at_once(
    stream: Stream, server_settings: WebRtcSettings
) -> None:
    transport = await ConsumerTransport.create(
        settings=server_settings,
        track=stream.fanout.subscribe(),
        rtp_parameters={"encodings": [{"ssrc": 111222333}]},
    )
    try:
        with pytest.raises(InvalidRemoteParameters):
            transport.connect({"role": "client", "fingerprints": []})
        fingerprint = {"algorithm": "sha-256", "value": "AB:" * 31 + "AB"}
        # Nobody answers, and connect (a plain function) returns: it starts ICE and DTLS in
        # the background instead of waiting for them (mediasoup-client waits for /connect).
        transport.connect({"role": "client", "fingerprints": [fingerprint]})
        assert transport.state == "connecting"
        with pytest.raises(TransportStateError):
            transport.connect({"role": "client", "fingerprints": [fingerprint]})
    finally:
        await transport.close()


async def test_first_frame_comes_from_the_gop_cache(
    stream: Stream, open_consumer: OpenConsumer
) -> None:
    # Join half a second into a GOP: the next keyframe is 1.5 s away.
    await stream.camera.wait_for_frame(GOP + FPS // 2)
    consumer = await open_consumer(stream)
    client = consumer.client
    async with asyncio.timeout(5):
        await client.first_frame.wait()
    first = client.frames[0]
    latency = first.at - consumer.opened_at
    next_keyframes = [t for t, _ in stream.camera.keyframes if t > consumer.opened_at]
    print(f"\nconsume → first decoded frame: {latency * 1000:.0f} ms")

    # The first decoded frame is the cached keyframe, shown before the camera sent another.
    assert first.index % GOP == 0
    assert not next_keyframes or first.at < next_keyframes[0]
    assert consumer.transport.state == "connected"

    # Then live frames follow, in order, at the camera's pace.
    await client.wait_frames(len(client.frames) + FPS)
    indexes = [f.index for f in client.frames]
    assert all(b == (a + 1) % (2 * GOP) for a, b in itertools.pairwise(indexes))
    assert consumer.transport.track.dropped_packets == 0
    assert consumer.transport.last_seen_at > time.time() - 5


@pytest.mark.perf
async def test_first_frame_latency_p50(stream: Stream, open_consumer: OpenConsumer) -> None:
    """DESIGN.md target: consume request → first decoded frame, p50 ≤ 300 ms."""
    latencies = []
    base = (stream.camera.sent // GOP + 1) * GOP
    for phase in (5, 20, 35, 50):  # frames into the GOP when the viewer arrives
        await stream.camera.wait_for_frame(base + phase)
        consumer = await open_consumer(stream)
        async with asyncio.timeout(5):
            await consumer.client.first_frame.wait()
        latencies.append(consumer.client.frames[0].at - consumer.opened_at)
        assert consumer.client.frames[0].index % GOP == 0
        await consumer.client.close()
        await consumer.transport.close()
    latencies.sort()
    p50 = (latencies[1] + latencies[2]) / 2
    print(f"\nfirst decoded frame: p50 {p50 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
    assert p50 <= 0.3


async def test_several_consumers_at_once(stream: Stream, open_consumer: OpenConsumer) -> None:
    await stream.camera.wait_for_frame(10)
    consumers = await asyncio.gather(*(open_consumer(stream) for _ in range(3)))
    assert stream.fanout.consumers == 3
    for consumer in consumers:
        await consumer.client.wait_frames(FPS)
    ssrcs = {c.transport.ssrc for c in consumers}
    ports = {c.transport.parameters()["ice_candidates"][0]["port"] for c in consumers}
    assert len(ssrcs) == 3 and len(ports) == 3
    for consumer in consumers:
        indexes = [f.index for f in consumer.client.frames]
        assert indexes[0] % GOP == 0
        assert consumer.transport.track.dropped_packets == 0

    # Closing one leaves the others running.
    await consumers[0].transport.close()
    assert stream.fanout.consumers == 2
    before = [len(c.client.frames) for c in consumers[1:]]
    await asyncio.sleep(0.5)
    assert all(len(c.client.frames) > n + 5 for c, n in zip(consumers[1:], before, strict=True))


async def test_slow_consumer_drops_to_a_keyframe_without_slowing_others(
    stream: Stream, open_consumer: OpenConsumer
) -> None:
    fast = await open_consumer(stream)
    await fast.client.wait_frames(5)
    # A consumer that stops reading (its sender starved of CPU, say), with a small queue.
    slow = stream.fanout.subscribe(queue_size=10)
    fast_before = len(fast.client.frames)
    await asyncio.sleep(1.5)
    fast_during = len(fast.client.frames) - fast_before

    assert slow.overflows >= 1
    assert slow.dropped_packets > 0
    assert slow.queued <= 10 + slow.primed_packets
    # Once it reads again, it restarts at a keyframe: no frame with missing references.
    first = await asyncio.wait_for(slow.recv(), 1)
    assert first.is_keyframe
    # The fast consumer kept its pace and lost nothing.
    assert fast_during >= 1.5 * FPS * 0.7
    assert fast.transport.track.dropped_packets == 0
    assert fast.transport.track.overflows == 0
    slow.stop()


async def test_silence_watchdog_closes_a_consumer_that_never_connects(
    stream: Stream, server_settings: WebRtcSettings
) -> None:
    closed: list[ConsumerTransport] = []
    settings = dataclasses.replace(server_settings, silence_timeout_s=0.5)
    transport = await ConsumerTransport.create(
        settings=settings,
        track=stream.fanout.subscribe(),
        rtp_parameters={"encodings": [{"ssrc": 111222333}]},
        on_close=closed.append,
    )
    await asyncio.sleep(1.2)
    assert closed == [transport]
    assert transport.state == "closed"
    assert stream.fanout.consumers == 0


async def test_silence_watchdog_closes_a_consumer_whose_viewer_vanished(
    stream: Stream, open_consumer: OpenConsumer, server_settings: WebRtcSettings
) -> None:
    # RTCP receiver reports come every 0.5-1.5 s, so 2 s of silence means the viewer is gone.
    settings = dataclasses.replace(server_settings, silence_timeout_s=2.0)
    consumer = await open_consumer(stream, settings=settings)
    closed_at: list[float] = []
    consumer.transport.on_close = lambda _: closed_at.append(time.time())
    await consumer.client.wait_frames(10)
    await asyncio.sleep(2.5)
    assert consumer.transport.state == "connected"  # RTCP kept it alive

    await consumer.client.vanish()
    async with asyncio.timeout(4):
        while not closed_at:
            await asyncio.sleep(0.05)
    assert consumer.transport.state == "closed"
    # Closed once 2 s passed without RTCP or ICE checks, not before.
    assert closed_at[0] - consumer.transport.last_seen_at >= 2.0
    assert stream.fanout.consumers == 0


async def test_wrong_fingerprint_fails_the_transport(
    stream: Stream, open_consumer: OpenConsumer
) -> None:
    consumer = await open_consumer(stream, tamper_fingerprint=True)
    closed: list[ConsumerTransport] = []
    consumer.transport.on_close = closed.append
    async with asyncio.timeout(3):
        while not closed:
            await asyncio.sleep(0.05)
    assert consumer.transport.state == "failed"
    assert consumer.transport.track.readyState == "ended"
    assert consumer.client.frames == []


async def test_trickled_candidates_are_acknowledged(
    stream: Stream, server_settings: WebRtcSettings
) -> None:
    transport = await ConsumerTransport.create(
        settings=server_settings,
        track=stream.fanout.subscribe(),
        rtp_parameters={"encodings": [{"ssrc": 111222333}]},
    )
    try:
        line = "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0"
        await transport.add_remote_candidate({"candidate": line, "sdpMid": "0"})
        await transport.add_remote_candidate({"candidate": ""})
        await transport.add_remote_candidate(None)
        with pytest.raises(InvalidRemoteParameters):
            await transport.add_remote_candidate({"candidate": "candidate:nonsense"})
    finally:
        await transport.close()


async def test_viewer_closing_dtls_closes_the_transport(
    stream: Stream, open_consumer: OpenConsumer
) -> None:
    consumer = await open_consumer(stream)
    closed: list[ConsumerTransport] = []
    consumer.transport.on_close = closed.append
    await consumer.client.wait_frames(5)
    await consumer.client.close()  # sends DTLS close_notify
    async with asyncio.timeout(3):
        while not closed:
            await asyncio.sleep(0.05)
    assert consumer.transport.state == "closed"


async def test_lost_packets_are_retransmitted_on_nack(
    stream: Stream, open_consumer: OpenConsumer
) -> None:
    """The network loses RTP packets on the way to the viewer (dropped still encrypted, as
    a network would); its NACKs bring them back from the sender's history, and no frame
    is lost."""
    consumer = await open_consumer(stream)
    client = consumer.client
    await client.wait_frames(FPS // 2)
    ice = client.ice
    original = ice._recv
    dropped: set[int] = set()
    recovered: set[int] = set()

    async def lossy() -> bytes:
        while True:
            data = await original()
            # SRTP (not SRTCP, not DTLS): its RTP header, sequence number included, is clear.
            if 127 < data[0] < 192 and not 192 <= data[1] <= 223:
                seq = int.from_bytes(data[2:4], "big")
                if seq in dropped:
                    recovered.add(seq)
                elif seq % 25 == 0 and len(dropped) < 8:
                    dropped.add(seq)
                    continue
            return data

    ice._recv = lossy  # type: ignore[method-assign]
    start = len(client.frames)
    try:
        await client.wait_frames(start + 3 * FPS, timeout=10)
    except TimeoutError:
        raise AssertionError(f"frames {len(client.frames) - start}, dropped {sorted(dropped)},"
                             f" recovered {sorted(recovered)}") from None
    assert len(dropped) >= 2
    assert recovered == dropped, f"not retransmitted: {sorted(dropped - recovered)}"
    indexes = [f.index for f in client.frames[start:]]
    assert all(b == (a + 1) % (2 * GOP) for a, b in itertools.pairwise(indexes)), indexes
