"""The Router owns a stream's fan-out, consumer transports and WHEP sessions, and closes
them with itself; `on_close` reports every child that ends, whatever ended it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from media.gop_cache import GopCache
from media.webrtc import CapabilityMismatch, InvalidRemoteParameters, Router
from media.webrtc.capabilities import router_rtp_capabilities
from media.webrtc.gathering import gather_announced
from media.webrtc.settings import WebRtcSettings
from tests.media.webrtc.ortc_client import CLIENT_SETTINGS

pytestmark = pytest.mark.asyncio
PROFILE = "42e01f"


@pytest.fixture
async def router(server_settings: WebRtcSettings) -> AsyncIterator[Router]:
    router = Router(GopCache(), server_settings, PROFILE, name="test")
    yield router
    await router.close()


async def _offer() -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    await gather_announced(transceiver.receiver.transport.transport._connection, CLIENT_SETTINGS)
    await pc.setLocalDescription(await pc.createOffer())
    return pc


def _caps() -> dict:
    router = router_rtp_capabilities(PROFILE)
    return {"codecs": [router["codecs"][0]], "headerExtensions": router["headerExtensions"]}


async def test_router_creates_and_closes_its_children(router: Router):
    closed: list[tuple[str, str]] = []
    router.on_close = lambda consumer_id, kind: closed.append((consumer_id, kind))
    assert router.rtp_capabilities == router_rtp_capabilities(PROFILE)

    transport, rtp = await router.create_consumer("c-1", _caps())
    assert transport.id == "transport-c-1" and router.consumer("c-1") is transport
    assert rtp["encodings"][0]["ssrc"] == transport.ssrc
    player = await _offer()
    try:
        session, answer = await router.create_whep_session("w-1", player.localDescription.sdp)
        assert "a=sendonly" in answer and router.whep_session("w-1") is session
        assert router.count == 2 and router.fanout.consumers == 2

        assert await router.close_consumer("c-1") is True
        assert await router.close_consumer("c-1") is False  # gone
        assert closed == [("c-1", "transport")]
        assert router.count == 1 and router.fanout.consumers == 1

        await router.close()
        assert closed == [("c-1", "transport"), ("w-1", "whep")]
        assert router.count == 0 and router.fanout.consumers == 0
        with pytest.raises(RuntimeError):
            await router.create_consumer("c-2", _caps())
    finally:
        await player.close()


async def test_unusable_requests_leave_nothing_behind(router: Router):
    with pytest.raises(CapabilityMismatch):
        await router.create_consumer("c-1", {"codecs": []})
    with pytest.raises(InvalidRemoteParameters):
        await router.create_whep_session("w-1", "v=0 garbage")
    assert router.count == 0 and router.fanout.consumers == 0
