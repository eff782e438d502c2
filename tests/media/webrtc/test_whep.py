"""WHEP: an aiortc RTCPeerConnection client (recvonly offer) against WhepSession."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator

import aioice.ice
import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.webrtc.errors import CapabilityMismatch, InvalidRemoteParameters
from media.webrtc.gathering import gather_announced
from media.webrtc.settings import WebRtcSettings
from media.webrtc.whep import WhepSession
from tests.media.webrtc.clip import FPS, GOP, Stream, read_index
from tests.media.webrtc.ortc_client import CLIENT_SETTINGS, SERVER_PORTS, ReceivedFrame

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def player() -> AsyncIterator[RTCPeerConnection]:
    """A WHEP player: recvonly video, no STUN server, candidates on 127.0.0.1 only."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    await gather_announced(transceiver.receiver.transport.transport._connection, CLIENT_SETTINGS)
    await pc.setLocalDescription(await pc.createOffer())
    yield pc
    await pc.close()


async def read_frames(track: MediaStreamTrack, frames: list[ReceivedFrame]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        assert isinstance(frame, av.VideoFrame)
        frames.append(ReceivedFrame(time.monotonic(), read_index(frame), frame.width))


async def test_whep_player_decodes_frames(
    stream: Stream, server_settings: WebRtcSettings, player: RTCPeerConnection
) -> None:
    await stream.camera.wait_for_frame(FPS // 2)
    closed: list[WhepSession] = []
    session = WhepSession(
        fanout=stream.fanout,
        settings=server_settings,
        profile_level_id="42e01f",
        on_close=closed.append,
    )
    frames: list[ReceivedFrame] = []
    readers: list[asyncio.Task[None]] = []
    player.on(
        "track", lambda track: readers.append(asyncio.ensure_future(read_frames(track, frames)))
    )
    try:
        answer = await session.answer(player.localDescription.sdp)

        # Answer: H.264 only, sendonly, candidates on the announced address and range only.
        video = answer[answer.index("m=video") :]
        assert re.findall(r"a=rtpmap:\d+ ([\w-]+)/", video) == ["H264"]
        assert "a=sendonly" in video
        assert "packetization-mode=1" in video and "profile-level-id=42e01f" in video
        candidates = re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ host", video)
        assert candidates
        assert all(ip == "127.0.0.1" for ip, _ in candidates)
        assert all(SERVER_PORTS[0] <= int(port) <= SERVER_PORTS[1] for _, port in candidates)

        await player.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        async with asyncio.timeout(10):
            while len(frames) < FPS:
                await asyncio.sleep(0.02)
        assert frames[0].index % GOP == 0  # started from the GOP cache here too
        assert session.state == "connected"
        assert stream.fanout.consumers == 1
    finally:
        await session.close()
        for reader in readers:
            reader.cancel()
    assert closed == [session]
    assert stream.fanout.consumers == 0


async def test_trickled_candidates_and_ice_restart(
    stream: Stream, server_settings: WebRtcSettings, player: RTCPeerConnection
) -> None:
    session = WhepSession(fanout=stream.fanout, settings=server_settings)
    try:
        offer = player.localDescription.sdp
        await session.answer(offer)
        ufrag = re.search(r"a=ice-ufrag:(\S+)", offer)
        assert ufrag is not None
        candidate = re.search(r"a=candidate:(.+)", offer)
        assert candidate is not None
        await session.add_candidates(
            f"a=ice-ufrag:{ufrag[1]}\r\na=mid:0\r\n"
            f"a=candidate:{candidate[1].strip()}\r\na=end-of-candidates\r\n"
        )
        with pytest.raises(InvalidRemoteParameters, match="restart"):
            await session.add_candidates("a=ice-ufrag:other\r\n")
        with pytest.raises(InvalidRemoteParameters):
            await session.add_candidates("a=candidate:garbage\r\n")
    finally:
        await session.close()


async def test_answer_describes_the_cameras_profile(
    stream: Stream, server_settings: WebRtcSettings, player: RTCPeerConnection
) -> None:
    # A browser offering Main profile next to constrained baseline (as Chromium does).
    offer = player.localDescription.sdp
    main_pt = re.findall(r"a=fmtp:(\d+) .*profile-level-id=42001f", offer)[0]
    offer = offer.replace("profile-level-id=42001f", "profile-level-id=4d001f")
    session = WhepSession(fanout=stream.fanout, settings=server_settings, profile_level_id="4d0028")
    try:
        answer = await session.answer(offer)
    finally:
        await session.close()
    video = answer[answer.index("m=video") :]
    assert re.findall(r"a=rtpmap:(\d+) H264/90000", video) == [main_pt]
    assert f"a=fmtp:{main_pt} " in video and "profile-level-id=4d0028" in video


async def test_offer_without_a_matching_h264_profile(
    stream: Stream, server_settings: WebRtcSettings, player: RTCPeerConnection
) -> None:
    # aiortc only offers constrained baseline; a Main-profile camera does not fit.
    session = WhepSession(fanout=stream.fanout, settings=server_settings, profile_level_id="4d001f")
    garbage = WhepSession(fanout=stream.fanout, settings=server_settings)
    try:
        with pytest.raises(CapabilityMismatch, match="Main"):
            await session.answer(player.localDescription.sdp)
        with pytest.raises(InvalidRemoteParameters):
            await garbage.answer("v=0\r\n")
    finally:
        await session.close()
        await garbage.close()
    assert stream.fanout.consumers == 0


async def test_mdns_candidates_are_not_resolved(
    stream: Stream, server_settings: WebRtcSettings, player: RTCPeerConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page without camera permission offers its host candidates as "<uuid>.local"
    names. The answer does not wait to resolve them (nothing answers mDNS on a server):
    the session learns the player's address from its checks and media flows."""
    async def no_mdns(subscriber: object) -> object:
        raise AssertionError("an mDNS candidate was resolved")

    monkeypatch.setattr(aioice.ice, "get_or_create_mdns_protocol", no_mdns)
    offer = re.sub(r"(a=candidate:\S+ \d+ udp \d+ )127\.0\.0\.1 ",
                   r"\g<1>0b0c2d1e-4a5b-4c6d-8e9f-0a1b2c3d4e5f.local ",
                   player.localDescription.sdp)
    assert ".local " in offer
    session = WhepSession(fanout=stream.fanout, settings=server_settings,
                          profile_level_id="42e01f")
    frames: list[ReceivedFrame] = []
    readers: list[asyncio.Task[None]] = []
    player.on(
        "track", lambda track: readers.append(asyncio.ensure_future(read_frames(track, frames)))
    )
    try:
        answer = await session.answer(offer)
        await session.add_candidates(
            "a=mid:0\r\na=candidate:1 1 udp 2122260223 "
            "0b0c2d1e-4a5b-4c6d-8e9f-0a1b2c3d4e5f.local 50000 typ host\r\n")
        await player.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        async with asyncio.timeout(10):
            while len(frames) < FPS // 2:
                await asyncio.sleep(0.02)
        assert session.state == "connected"
    finally:
        await session.close()
        for reader in readers:
            reader.cancel()


async def test_a_session_that_never_connects_is_closed(
    stream: Stream, server_settings: WebRtcSettings, player: RTCPeerConnection
) -> None:
    """The viewer never applies the answer (no check ever arrives): the session ends once
    the connect timeout has passed, and leaves the fan-out."""
    settings = dataclasses.replace(server_settings, connect_timeout_s=0.5)
    closed: list[WhepSession] = []
    session = WhepSession(fanout=stream.fanout, settings=settings, profile_level_id="42e01f",
                          on_close=closed.append)
    try:
        await session.answer(player.localDescription.sdp)
        assert stream.fanout.consumers == 1
        async with asyncio.timeout(5):
            while not closed:
                await asyncio.sleep(0.05)
    finally:
        await session.close()
    assert closed == [session]
    assert stream.fanout.consumers == 0
