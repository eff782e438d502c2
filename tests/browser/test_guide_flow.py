"""The integration guide's client flow (§4.2) in Chromium with stock mediasoup-client, and a
plain-RTCPeerConnection WHEP client, against `vas up` and an RTSP camera in a namespace."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import Page

pytestmark = pytest.mark.slow


@pytest.fixture
def page(vas_stack: dict[str, Any]) -> Iterator[Page]:
    """A fresh tab on the VAS origin (as the browser sees it: http://127.0.0.1:PORT)."""
    page: Page = vas_stack["browser"].open_test_page(vas_stack["vas"].page_origin)
    yield page
    page.close()


def _args(stack: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"token": stack["token"], "deviceId": stack["device_id"], **extra}


def _consumers(stack: dict[str, Any], stream_id: str) -> dict[str, dict[str, Any]]:
    with stack["vas"].client() as http:
        answer = http.get(f"/v2/streams/{stream_id}/consumers",
                          headers={"Authorization": f"Bearer {stack['token']}"})
    assert answer.status_code == 200, answer.text
    return {c["id"]: c for c in answer.json()["consumers"]}


def _assert_progress(page: Page, source: str, handle: int) -> dict[str, Any]:
    """Frames keep being decoded and shown: two snapshots a second apart."""
    first = page.evaluate(source, handle)
    time.sleep(1.0)
    second = page.evaluate(source, handle)
    assert second["framesDecoded"] > first["framesDecoded"], (first, second)
    assert second["rvfcCallbacks"] > first["rvfcCallbacks"], (first, second)
    assert second["currentTime"] > first["currentTime"], (first, second)
    return second


def test_guide_flow_decodes_video(vas_stack: dict[str, Any], page: Page,
                                  tmp_path: Path) -> None:
    started = time.monotonic()
    ids = page.evaluate("(a) => vasGuide.run(a)", _args(vas_stack, clientId="guide-1"))
    first = page.evaluate("([h, o]) => vasGuide.waitForFrames(h, o)",
                          [ids["handle"], {"frames": 15, "timeoutMs": 20000}], timeout=30)
    first_frames_s = time.monotonic() - started
    assert ids["handlerName"] == "Chrome111"
    assert ids["producerId"] and ids["consumerId"] and ids["transportId"]
    assert ids["health"]["status"] == 200
    assert first["connectionState"] == "connected"
    assert (first["videoWidth"], first["videoHeight"]) == (640, 360)
    progress = _assert_progress(page, "(h) => vasGuide.progress(h)", ids["handle"])
    page.screenshot(tmp_path / "guide.png")
    assert _consumers(vas_stack, ids["streamId"])[ids["consumerId"]]["state"] == "CONNECTED"
    assert page.evaluate("(a) => vasGuide.stop(a.h, a)",
                         {"h": ids["handle"], "token": vas_stack["token"]}) == 204
    print(f"guide flow: first {first['framesDecoded']} frames in {first_frames_s:.2f} s; "
          f"{progress}")


def test_several_viewers_decode_at_once(vas_stack: dict[str, Any], page: Page) -> None:
    runs = page.evaluate(
        "(args) => Promise.all(args.map((a) => vasGuide.run(a)))",
        [_args(vas_stack, clientId=f"viewer-{i}") for i in range(3)], timeout=60)
    assert len({r["consumerId"] for r in runs}) == 3
    assert len({r["streamId"] for r in runs}) == 1
    for run in runs:
        page.evaluate("([h, o]) => vasGuide.waitForFrames(h, o)",
                      [run["handle"], {"frames": 15, "timeoutMs": 20000}], timeout=30)
    for run in runs:
        _assert_progress(page, "(h) => vasGuide.progress(h)", run["handle"])
    listed = _consumers(vas_stack, runs[0]["streamId"])
    assert all(listed[r["consumerId"]]["state"] == "CONNECTED" for r in runs), listed
    for run in runs:
        assert page.evaluate("(a) => vasGuide.stop(a.h, a)",
                             {"h": run["handle"], "token": vas_stack["token"]}) == 204


def test_deleted_consumer_shows_closed_in_the_consumer_list(
    vas_stack: dict[str, Any], page: Page
) -> None:
    ids = page.evaluate("(a) => vasGuide.run(a)", _args(vas_stack, clientId="to-delete"))
    page.evaluate("([h, o]) => vasGuide.waitForFrames(h, o)",
                  [ids["handle"], {"frames": 5, "timeoutMs": 20000}], timeout=30)
    assert page.evaluate("(a) => vasGuide.stop(a.h, a)",
                         {"h": ids["handle"], "token": vas_stack["token"]}) == 204
    entry = _consumers(vas_stack, ids["streamId"])[ids["consumerId"]]
    assert entry["state"] == "CLOSED" and entry["closed_at"], entry
    assert entry["client_id"] == "to-delete"


@pytest.mark.parametrize("trickle", [False, True], ids=["gathered", "trickle"])
def test_whep_from_chromium_decodes(vas_stack: dict[str, Any], page: Page,
                                    trickle: bool) -> None:
    # The guide's step 2 gives the stream id (idempotent: reconnect when already live).
    with vas_stack["vas"].client() as http:
        started = http.post(f"/api/v1/devices/{vas_stack['device_id']}/start-stream")
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    url = f"{vas_stack['vas'].page_origin}/v2/streams/{stream_id}/whep"
    session = page.evaluate("(a) => vasWhep.start(a)",
                            {"url": url, "token": vas_stack["token"], "trickle": trickle})
    assert session["status"] == 201
    assert session["contentType"].startswith("application/sdp")
    assert session["location"].startswith(f"{url}/")
    if not trickle:
        assert session["gatheringCompleted"] is True, session
        assert "a=candidate:" in session["offer"]
    page.evaluate("([h, o]) => vasWhep.waitForFrames(h, o)",
                  [session["handle"], {"frames": 15, "timeoutMs": 20000}], timeout=30)
    progress = _assert_progress(page, "(h) => vasWhep.progress(h)", session["handle"])
    assert progress["connectionState"] == "connected"
    if trickle:
        assert progress["patches"] and set(progress["patches"]) == {204}, progress
    print(f"WHEP trickle={trickle}: gathering {session['gatheringMs']:.0f} ms; {progress}")
    assert page.evaluate("(h) => vasWhep.stop(h)", session["handle"]) in (200, 204)
    whep_id = session["location"].rsplit("/", 1)[1]
    assert _consumers(vas_stack, stream_id)[whep_id]["state"] == "CLOSED"
