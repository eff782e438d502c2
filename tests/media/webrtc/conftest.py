"""Fixtures for the WebRTC tests: a live stream fed by a paced camera, and the guide's
consume/connect flow against a browser-like client. Everything binds 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from media.gop_cache import GopCache
from media.webrtc.capabilities import (
    consumer_rtp_parameters,
    random_ssrc,
    router_rtp_capabilities,
)
from media.webrtc.consumer_transport import ConsumerTransport
from media.webrtc.fanout import Fanout
from media.webrtc.settings import WebRtcSettings
from tests.media.webrtc.clip import Camera, ClipFrame, Stream, encode_clip
from tests.media.webrtc.ortc_client import SERVER_PORTS, OrtcClient, chrome_like_caps


@pytest.fixture(scope="session")
def h264_clip() -> list[ClipFrame]:
    """4 s of 320x240 30 fps baseline H.264 with a 2 s GOP, encoded once per session."""
    return encode_clip()


@pytest.fixture
async def stream(h264_clip: list[ClipFrame]) -> AsyncIterator[Stream]:
    """A live stream: camera → GOP cache → fan-out, started."""
    gop_cache = GopCache()
    fanout = Fanout(gop_cache, name="test-stream")
    camera = Camera(h264_clip, gop_cache, fanout)
    camera.start()
    yield Stream(fanout, gop_cache, camera)
    camera.stop()
    fanout.close()


@pytest.fixture
def server_settings() -> WebRtcSettings:
    return WebRtcSettings(
        announced_ips=("127.0.0.1",),
        port_min=SERVER_PORTS[0],
        port_max=SERVER_PORTS[1],
        silence_timeout_s=30.0,
        connect_timeout_s=10.0,
    )


@dataclass
class Consumer:
    """A server-side consumer and the browser-like client that receives it."""

    transport: ConsumerTransport
    client: OrtcClient
    rtp_parameters: dict[str, Any]
    opened_at: float  # monotonic, before `consume`


OpenConsumer = Callable[..., Awaitable[Consumer]]


@pytest.fixture
async def open_consumer(
    server_settings: WebRtcSettings,
) -> AsyncIterator[OpenConsumer]:
    """`await open_consumer(stream)` runs the guide's flow (consume, connect) against a
    ConsumerTransport; everything opened is closed after the test."""
    opened: list[Consumer] = []

    async def open_(
        stream: Stream,
        *,
        settings: WebRtcSettings | None = None,
        queue_size: int | None = None,
        tamper_fingerprint: bool = False,
    ) -> Consumer:
        opened_at = time.monotonic()
        router_caps = router_rtp_capabilities("42e01f")
        rtp = consumer_rtp_parameters(
            chrome_like_caps(router_caps),
            router_caps,
            ssrc=random_ssrc(),
            mid="0",
            cname="vas-test",
        )
        track = stream.fanout.subscribe(queue_size=queue_size)
        transport = await ConsumerTransport.create(
            settings=settings or server_settings, track=track, rtp_parameters=rtp
        )
        client = OrtcClient()
        consumer = Consumer(transport, client, rtp, opened_at)
        opened.append(consumer)
        await client.start(
            transport.parameters(), rtp, transport.connect, tamper_fingerprint=tamper_fingerprint
        )
        return consumer

    yield open_
    for consumer in opened:
        with contextlib.suppress(Exception):
            await consumer.client.close()
        await consumer.transport.close()
