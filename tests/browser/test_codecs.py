"""An H.265 camera watched in Chromium (docs/codecs.md): the guide's mediasoup-client flow
and WHEP decode the H.264 of the stream's one transcoder, which starts with the first viewer
and stops after the last."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import NetnsCamera
from tests.browser.harness import Page
from tests.browser.test_guide_flow import _assert_progress, page  # noqa: F401
from tests.browser.test_live_webrtc import PROGRESS, START, STOP
from tests.camera import CameraProfile

pytestmark = pytest.mark.slow


def _device(stack: dict[str, Any], codec: str) -> Iterator[str]:
    """A camera sending ``codec`` in the stack's namespace, registered; its device id."""
    camera = NetnsCamera(stack["netns"], CameraProfile(codec=codec, gop=15))
    camera.start()
    try:
        with stack["vas"].client() as http:
            device = http.post("/api/v1/devices",
                               json={"name": f"{codec} camera", "rtsp_url": camera.url})
            assert device.status_code == 201, device.text
        yield str(device.json()["id"])
    finally:
        camera.stop()


@pytest.fixture(scope="module")
def h265_device(vas_stack: dict[str, Any]) -> Iterator[str]:
    yield from _device(vas_stack, "h265")


@pytest.fixture(scope="module")
def mjpeg_device(vas_stack: dict[str, Any]) -> Iterator[str]:
    yield from _device(vas_stack, "mjpeg")


def _transcoder(stack: dict[str, Any], stream_id: str) -> dict[str, Any]:
    with stack["vas"].client() as http:
        health = http.get(f"/v2/streams/{stream_id}/health",
                          headers={"Authorization": f"Bearer {stack['token']}"}).json()
    return dict(health["codecs"]["transcoder"] or {})


def _until(probe: Any, what: str, seconds: float) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


def test_h265_camera_decodes_in_chromium_over_the_guide_flow_and_whep(
    vas_stack: dict[str, Any], h265_device: str, page: Page  # noqa: F811
) -> None:
    token = vas_stack["token"]
    ids = page.evaluate("(a) => vasGuide.run(a)",
                        {"token": token, "deviceId": h265_device, "clientId": "h265"})
    stream_id = ids["streamId"]
    first = page.evaluate("([h, o]) => vasGuide.waitForFrames(h, o)",
                          [ids["handle"], {"frames": 15, "timeoutMs": 20000}], timeout=30)
    assert (first["videoWidth"], first["videoHeight"]) == (640, 360)
    _assert_progress(page, "(h) => vasGuide.progress(h)", ids["handle"])

    url = f"{vas_stack['vas'].page_origin}/v2/streams/{stream_id}/whep"
    session = page.evaluate("(a) => vasWhep.start(a)",
                            {"url": url, "token": token, "trickle": False})
    assert session["status"] == 201, session
    page.evaluate("([h, o]) => vasWhep.waitForFrames(h, o)",
                  [session["handle"], {"frames": 15, "timeoutMs": 20000}], timeout=30)
    _assert_progress(page, "(h) => vasWhep.progress(h)", session["handle"])
    # Two viewers, one transcoder, started once.
    running = _transcoder(vas_stack, stream_id)
    assert running["running"] is True and running["starts"] == 1, running

    assert page.evaluate("(a) => vasGuide.stop(a.h, a)", {"h": ids["handle"], "token": token}) \
        == 204
    assert _transcoder(vas_stack, stream_id)["running"] is True  # WHEP still watches
    assert page.evaluate("(h) => vasWhep.stop(h)", session["handle"]) in (200, 204)
    stopped = _until(lambda: (lambda t: t if not t["running"] else None)(
        _transcoder(vas_stack, stream_id)), "the transcoder stopped", 10)
    assert stopped["starts"] == 1 and stopped["frames_out"] > 30


def test_mjpeg_camera_decodes_in_chromium_over_whep(
    vas_stack: dict[str, Any], mjpeg_device: str, page: Page  # noqa: F811
) -> None:
    with vas_stack["vas"].client() as http:
        started = http.post(f"/api/v1/devices/{mjpeg_device}/start-stream")
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    url = f"{vas_stack['vas'].page_origin}/v2/streams/{stream_id}/whep"
    session = page.evaluate("(a) => vasWhep.start(a)",
                            {"url": url, "token": vas_stack["token"], "trickle": False})
    assert session["status"] == 201, session
    first = page.evaluate("([h, o]) => vasWhep.waitForFrames(h, o)",
                          [session["handle"], {"frames": 15, "timeoutMs": 20000}], timeout=30)
    _assert_progress(page, "(h) => vasWhep.progress(h)", session["handle"])
    assert page.evaluate("(h) => vasWhep.stop(h)", session["handle"]) in (200, 204)
    # MJPEG is recorded from the transcoder's H.264: it keeps running without viewers.
    assert _transcoder(vas_stack, stream_id)["running"] is True
    print(f"MJPEG over WHEP: {first}")


def test_h265_camera_over_the_omnisight_server_offer(
    vas_stack: dict[str, Any], h265_device: str, page: Page  # noqa: F811
) -> None:
    token = vas_stack["token"]
    with vas_stack["vas"].client() as http:
        started = http.post(f"/api/v1/devices/{h265_device}/start-stream")
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    base = f"{vas_stack['vas'].page_origin}/api/v1/cameras/{h265_device}/live/webrtc"
    session = page.evaluate(START, {"base": base, "token": token}, timeout=30)
    assert session["answerStatus"] == 204, session
    assert "m=audio" not in session["offer"]  # a camera without sound: video only
    progress = _until(lambda: (lambda p: p if p["framesDecoded"] >= 15 and p["width"] else None)(
        page.evaluate(PROGRESS)), "15 frames decoded", 20)
    assert (progress["width"], progress["height"]) == (640, 360)
    assert page.evaluate(STOP) == 204
    _until(lambda: not _transcoder(vas_stack, stream_id)["running"], "the transcoder stopped", 10)
