"""WHEP with audio: an AAC camera's tone reaches an aiortc player as Opus, from the
stream's one Opus transcoder, which runs only while a session takes audio (real RTSP
camera, real PyAV, real aiortc peer connections)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.audio_fanout import AudioFanout
from media.audio_transcode import OpusTranscoder
from media.ingest import RtspIngest
from media.webrtc.fanout import Fanout
from media.webrtc.gathering import gather_announced
from media.webrtc.settings import WebRtcSettings
from media.webrtc.whep import WhepSession
from tests.camera import TestCamera
from tests.media.conftest_media import CAMERA_PROFILE
from tests.media.webrtc.ortc_client import CLIENT_SETTINGS

pytestmark = pytest.mark.asyncio

TONE_HZ = 660


@pytest.fixture
async def player() -> AsyncIterator[RTCPeerConnection]:
    """A WHEP player receiving video and audio, candidates on 127.0.0.1 only."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await gather_announced(transceiver.receiver.transport.transport._connection, CLIENT_SETTINGS)
    await pc.setLocalDescription(await pc.createOffer())
    yield pc
    await pc.close()


async def read_audio(track: MediaStreamTrack, samples: list[np.ndarray]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if isinstance(frame, av.AudioFrame):
            data = frame.to_ndarray().reshape(-1)
            samples.append(data[:: len(frame.layout.channels)])  # first channel (packed)


async def test_aac_camera_tone_reaches_a_whep_player_as_opus(
    server_settings: WebRtcSettings, player: RTCPeerConnection
) -> None:
    profile = dataclasses.replace(CAMERA_PROFILE, audio=True, audio_codec="aac",
                                  tone_hz=TONE_HZ)
    with TestCamera(profile) as camera:
        ingest = RtspIngest(camera.url)
        fanout = Fanout(ingest.gop_cache, name="audio test")
        ingest.add_sink(fanout)
        opus = OpusTranscoder(lambda: ingest.audio_info, name="audio test")
        ingest.add_audio_sink(opus)
        audio = AudioFanout(available=lambda: ingest.audio_info is not None,
                            on_count=lambda n: opus.start() if n else opus.stop())
        opus.sinks.append(audio)
        await ingest.open()
        session = WhepSession(fanout=fanout, settings=server_settings, sources=[audio])
        samples: list[np.ndarray] = []
        readers: list[asyncio.Task[None]] = []
        player.on("track", lambda track: readers.append(
            asyncio.ensure_future(read_audio(track, samples))) if track.kind == "audio" else None)
        try:
            assert not opus.running  # on demand: nobody takes audio yet
            answer = await session.answer(player.localDescription.sdp)
            section = answer[answer.index("m=audio"):]
            assert re.findall(r"a=rtpmap:\d+ ([\w-]+)/", section) == ["opus"]
            assert "a=sendonly" in section
            assert opus.running and audio.consumers == 1
            await player.setRemoteDescription(RTCSessionDescription(answer, "answer"))
            async with asyncio.timeout(15):
                while sum(len(s) for s in samples) < 48000:  # one second at 48 kHz
                    await asyncio.sleep(0.05)
        finally:
            await session.close()
            for reader in readers:
                reader.cancel()
            await ingest.stop()
        assert not opus.running and audio.consumers == 0  # stopped after the last consumer
        assert opus.starts == 1
    signal = np.concatenate(samples)[-48000:].astype(float)
    spectrum = np.abs(np.fft.rfft(signal))
    spectrum[0] = 0
    dominant = float(np.argmax(spectrum)) * 48000 / len(signal)
    assert abs(dominant - TONE_HZ) < 10, f"dominant {dominant:.0f} Hz"
    assert np.abs(signal).max() > 1000  # a tone, not silence
