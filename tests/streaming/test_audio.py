"""Camera audio through a real media node and worker: an AAC camera's stream is recorded
with its AAC, and `vas_client` over WHEP decodes Opus audio frames whose dominant frequency
is the camera's tone (docs/codecs.md). SQLite only: audio does not touch the backends.
"""

from __future__ import annotations

import io
import time
from typing import Any

import av
import numpy as np
import pytest

from tests.conftest import bearer
from tests.streaming.test_codecs import _segment, _start
from tests.vas_fixtures import until
from vas_client import StreamConsumer, VasClient

pytestmark = [pytest.mark.slow,
              pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

TONE_HZ = 880


async def test_aac_camera_recorded_with_aac_and_heard_as_opus_over_whep(
        client, admin_token, media_node, worker, start_camera):
    camera = start_camera(width=640, height=360, fps=15, gop=15, audio=True,
                          audio_codec="aac", tone_hz=TONE_HZ)
    stream_id = await _start(client, camera.url)
    detail = (await client.get(f"/v2/streams/{stream_id}", headers=bearer(admin_token))).json()
    assert detail["codec_config"]["audio"] == {
        "codec": "AAC", "sample_rate": 16000, "channels": 1,
        "recording": {"codec": "AAC", "transcoded": False},
        "webrtc": {"codec": "OPUS", "clock_rate": 48000, "channels": 2, "transcoded": True}}
    segment = await _segment(client, bearer(admin_token), stream_id)
    with av.open(io.BytesIO(segment)) as recorded:
        assert [s.codec_context.name for s in recorded.streams.audio] == ["aac"]

    headers = bearer(admin_token)

    async def opus(running: bool) -> dict[str, Any] | None:
        health = (await client.get(f"/v2/streams/{stream_id}/health", headers=headers)).json()
        stats = health["codecs"]["audio_transcoder"]
        return stats if stats is not None and stats["running"] is running else None

    idle = await until(lambda: opus(False), "health with the idle Opus transcoder", 10)
    assert idle["starts"] == 0  # nobody has taken audio yet
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = admin_token, time.monotonic() + 600
    samples: list[Any] = []
    rate = 0
    async with StreamConsumer(vas, stream_id, mode="whep", audio=True,
                              local_ip="127.0.0.1") as consumer:
        async for frame in consumer.audio_frames():
            samples.append(frame.samples)
            rate = frame.sample_rate
            if sum(len(s) for s in samples) >= rate:  # one second
                break
    stopped = await until(lambda: opus(False), "the Opus transcoder stopped", 10)
    assert stopped["starts"] == 1 and stopped["packets_out"] >= 50
    assert rate == 48000
    signal = np.concatenate(samples).astype(float)
    spectrum = np.abs(np.fft.rfft(signal))
    spectrum[0] = 0
    dominant = float(np.argmax(spectrum)) * rate / len(signal)
    assert abs(dominant - TONE_HZ) < 10, f"dominant {dominant:.0f} Hz"
