"""The guide's mediasoup-client flow with the camera's sound (docs/codecs.md): stock
mediasoup-client in Chromium consumes the video *and*, the mediasoup way, the audio
(`kind: 'audio'`, `producerId: streamInfo.producers.audio`) of an AAC camera sending a tone;
Chromium receives Opus RTP, its audio level is above zero and WebAudio hears the tone."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.harness import Page
from tests.browser.test_guide_flow import _assert_progress, _consumers, page  # noqa: F401

pytestmark = pytest.mark.slow

TONE_HZ = 440  # the test camera's default tone (tests/camera CameraProfile.tone_hz)


def _audio_transcoder(stack: dict[str, Any], stream_id: str) -> dict[str, Any]:
    with stack["vas"].client() as http:
        health = http.get(f"/v2/streams/{stream_id}/health",
                          headers={"Authorization": f"Bearer {stack['token']}"}).json()
    return dict(health["codecs"]["audio_transcoder"] or {})


def _until(probe: Any, what: str, seconds: float) -> Any:
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        last = probe()
        if last and last.get("ok", True):
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s (last {last})")


def test_guide_flow_consumes_video_and_audio_of_an_aac_camera(
    vas_stack: dict[str, Any], page: Page  # noqa: F811
) -> None:
    token = vas_stack["token"]
    ids = page.evaluate("(a) => vasGuide.run(a)", {
        "token": token, "deviceId": vas_stack["device_id"], "clientId": "guide-audio",
        "audio": True}, timeout=60)
    assert ids["handlerName"] == "Chrome111"
    assert ids["routerCodecs"] == ["video/H264", "audio/opus"]
    audio = ids["audio"]
    assert audio["producerId"] and audio["producerId"] != ids["producerId"]
    assert audio["consumerId"] != ids["consumerId"]
    assert audio["transportId"] != ids["transportId"]
    (codec,) = audio["rtpParameters"]["codecs"]
    assert (codec["mimeType"], codec["clockRate"], codec["channels"]) == ("audio/opus", 48000, 2)

    # The video is the guide's, as before.
    page.evaluate("([h, o]) => vasGuide.waitForFrames(h, o)",
                  [ids["handle"], {"frames": 15, "timeoutMs": 20000}], timeout=30)
    _assert_progress(page, "(h) => vasGuide.progress(h)", ids["handle"])

    # The audio: Opus RTP received and decoded to a sound, and that sound is the tone.
    def heard() -> dict[str, Any]:
        now = page.evaluate("(h) => vasGuide.audioProgress(h)", ids["handle"])
        now["ok"] = (now["packets"] > 0 and now["level"] > 0 and now["peak"]["db"] > -70
                     and abs(now["peak"]["hz"] - TONE_HZ) < 15)
        return dict(now)

    sound = _until(heard, "the tone heard", 20)
    assert sound["connectionState"] == "connected" and sound["mime"] == "audio/opus", sound
    time.sleep(1.0)  # and it goes on
    later = page.evaluate("(h) => vasGuide.audioProgress(h)", ids["handle"])
    assert later["packets"] > sound["packets"] and later["energy"] > sound["energy"], later

    listed = _consumers(vas_stack, ids["streamId"])
    assert listed[ids["consumerId"]]["state"] == "CONNECTED", listed
    assert listed[audio["consumerId"]]["state"] == "CONNECTED", listed
    running = _audio_transcoder(vas_stack, ids["streamId"])
    assert running["running"] is True and running["starts"] == 1, running

    assert page.evaluate("(a) => vasGuide.stop(a.h, a)", {"h": ids["handle"], "token": token}) \
        == 204
    listed = _consumers(vas_stack, ids["streamId"])
    assert listed[audio["consumerId"]]["state"] == "CLOSED", listed
    stopped = _until(lambda: (lambda t: t if not t["running"] else None)(
        _audio_transcoder(vas_stack, ids["streamId"])), "the Opus transcoder stopped", 10)
    assert stopped["starts"] == 1 and stopped["packets_out"] > 50, stopped
    print(f"guide flow audio: {sound}")
