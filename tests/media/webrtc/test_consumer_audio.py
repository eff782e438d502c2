"""An audio consumer of a stream's Router, the mediasoup way (docs/codecs.md): its own
ICE-lite + DTLS transport carrying the stream's Opus (from the one Opus transcoder, started
with the first audio consumer and stopped after the last) to a browser-like client, which
hears the AAC camera's tone. Real RTSP camera, real PyAV, real aiortc."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from media.audio_fanout import AudioFanout
from media.audio_transcode import OpusTranscoder
from media.ingest import RtspIngest
from media.webrtc import CapabilityMismatch, KindUnavailable, Router
from media.webrtc.settings import WebRtcSettings
from tests.camera import TestCamera
from tests.media.conftest_media import CAMERA_PROFILE
from tests.media.webrtc.ortc_client import OrtcClient, chrome_like_caps

pytestmark = pytest.mark.asyncio

TONE_HZ = 660


async def test_audio_consumer_hears_the_camera_tone_as_opus(
    server_settings: WebRtcSettings,
) -> None:
    profile = dataclasses.replace(CAMERA_PROFILE, audio=True, audio_codec="aac",
                                  tone_hz=TONE_HZ)
    with TestCamera(profile) as camera:
        ingest = RtspIngest(camera.url)
        router = Router(ingest.gop_cache, server_settings, "42e01f", name="audio consumer")
        ingest.add_sink(router.fanout)
        opus = OpusTranscoder(lambda: ingest.audio_info, name="audio consumer")
        ingest.add_audio_sink(opus)
        audio = AudioFanout(available=lambda: ingest.audio_info is not None,
                            on_count=lambda n: opus.start() if n else opus.stop())
        opus.sinks.append(audio)
        router.sources.append(audio)
        await ingest.open()
        client = OrtcClient()
        try:
            caps = router.rtp_capabilities
            assert [c["mimeType"] for c in caps["codecs"]] == ["video/H264", "audio/opus"]
            assert not opus.running  # nobody takes audio yet
            transport, rtp = await router.create_consumer("a-1", chrome_like_caps(caps),
                                                          kind="audio")
            assert transport.kind == "audio" and router.consumer("a-1") is transport
            assert (router.count, router.video_count) == (1, 0)  # the video is not paid for
            assert opus.running and audio.consumers == 1
            (codec,) = rtp["codecs"]
            assert (codec["mimeType"], codec["payloadType"], codec["clockRate"],
                    codec["channels"]) == ("audio/opus", 101, 48000, 2)
            assert rtp["encodings"] == [{"ssrc": transport.ssrc}]
            await client.start(transport.parameters(), rtp, transport.connect)
            async with asyncio.timeout(15):
                while sum(len(s) for s in client.samples) < 48000:  # one second
                    await asyncio.sleep(0.05)
            assert transport.state == "connected"
            assert await router.close_consumer("a-1") is True
        finally:
            await client.close()
            await router.close()
            await ingest.stop()
        assert not opus.running and audio.consumers == 0  # stopped after the last consumer
        assert opus.starts == 1
    signal = np.concatenate(client.samples)[-48000:].astype(float)
    spectrum = np.abs(np.fft.rfft(signal))
    spectrum[0] = 0
    dominant = float(np.argmax(spectrum)) * 48000 / len(signal)
    assert abs(dominant - TONE_HZ) < 10, f"dominant {dominant:.0f} Hz"
    assert np.abs(signal).max() > 1000  # a tone, not silence


async def test_audio_consumer_refused_without_audio_or_opus(
    server_settings: WebRtcSettings,
) -> None:
    available = False
    audio = AudioFanout(available=lambda: available)
    router = Router(None, server_settings, "42e01f", name="no audio")
    router.sources.append(audio)
    try:
        caps = router.rtp_capabilities
        assert [c["mimeType"] for c in caps["codecs"]] == ["video/H264"]  # as without sources
        with pytest.raises(KindUnavailable):
            await router.create_consumer("a-1", chrome_like_caps(caps), kind="audio")
        with pytest.raises(KindUnavailable):
            await router.create_consumer("a-2", chrome_like_caps(caps), kind="data")
        available = True
        video_only = chrome_like_caps(router.rtp_capabilities)
        video_only["codecs"] = video_only["codecs"][:1]
        with pytest.raises(CapabilityMismatch, match="no Opus"):
            await router.create_consumer("a-3", video_only, kind="audio")
        assert router.count == 0 and audio.consumers == 0  # nothing left subscribed
    finally:
        await router.close()
