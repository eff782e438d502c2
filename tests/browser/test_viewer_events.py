"""The viewer page's events and detection settings in Chromium, against `vas up` and a real
RTSP camera showing the motion scene: a motion event arrives live over the WebSocket with its
thumbnail and its box drawn over it; the type filter hides it; a click on it plays its
recording at that moment; regions drawn over the camera's snapshot and saved are what
`GET /cameras/:id/detection` returns."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.browser.conftest import netns_stack
from tests.browser.harness import Page
from tests.browser.test_viewer import _click, _type, _wait
from tests.camera import CameraProfile

pytestmark = pytest.mark.slow

SCOPES = ["streams:read", "streams:write", "cameras:read", "events:read", "recordings:read",
          "detection:read", "detection:write"]
# The block moves on the right of a still pattern (tests/detection/helpers.py's scene).
SCENE = CameraProfile(width=640, height=360, fps=15, gop=15, bitrate_kbps=800, scene="motion",
                      pattern="smpte100", object_area=(0.55, 0.2, 1.0, 0.8))


@pytest.fixture(scope="module")
def stack(browser_bundles: dict[str, float],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The stack with the scene camera streaming, detection on it (motion only, 500 ms),
    and a client with the scopes the panels need."""
    with netns_stack(tmp_path_factory.mktemp("vas-events"), SCENE, "Door") as running:
        device = running["device_id"]
        headers = {"Authorization": f"Bearer {running['token']}"}
        with running["vas"].client() as http:
            started = http.post(f"/api/v1/devices/{device}/start-stream", timeout=40)
            assert started.status_code in (200, 201), started.text
            settings = http.put(f"/api/v1/cameras/{device}/detection", headers=headers, json={
                "detectionInterval": 500,
                "motionDetection": {"enabled": True, "sensitivity": 0.5, "minArea": 100},
                "objectTypes": [{"type": t, "enabled": False}
                                for t in ("person", "vehicle", "animal")]})
            assert settings.status_code == 200, settings.text
            client_id = f"events-{uuid.uuid4().hex[:8]}"
            created = http.post("/v2/auth/clients", headers=headers,
                                json={"client_id": client_id, "scopes": SCOPES})
            assert created.status_code == 201, created.text
        running["client"] = (client_id, created.json()["client_secret"])
        running["headers"] = headers
        yield running


@pytest.fixture
def page(stack: dict[str, Any]) -> Iterator[Page]:
    page: Page = stack["browser"].new_page()
    assert page.goto(stack["vas"].page_origin + "/") == 200
    client_id, secret = stack["client"]
    _type(page, "client-id", client_id)
    _type(page, "client-secret", secret)
    _click(page, "sign-in")
    yield page
    assert page.logs()["errors"] == []
    page.close()


def _api(stack: dict[str, Any], method: str, path: str, **kwargs: Any) -> Any:
    with stack["vas"].client() as http:
        response = http.request(method, f"/api/v1{path}", headers=stack["headers"], **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _recorded(stack: dict[str, Any], recording: str, seconds: float) -> None:
    """Until the recording has run for `seconds`."""
    deadline = time.monotonic() + 30
    while _api(stack, "GET", f"/recordings/{recording}")["duration"] < seconds:
        assert time.monotonic() < deadline, f"recording {recording} shorter than {seconds} s"
        time.sleep(0.2)


def _when(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_a_live_event_is_shown_filtered_and_plays_its_recording(
    stack: dict[str, Any], page: Page
) -> None:
    device = stack["device_id"]
    _wait(page, f"document.querySelector('#events-camera option[value=\"{device}\"]')",
          "the camera listed in the filter")
    recording = _api(stack, "POST", f"/cameras/{device}/recordings/start",
                     json={"settings": {"segmentDuration": 10, "format": "mp4"}})
    _wait(page, "document.getElementById('events-panel').dataset.live === 'subscribed'",
          "WebSocket subscribed to the cameras", 20)
    # The event must fall well inside the recording (its first segment starts at a keyframe).
    _recorded(stack, recording["id"], 2.0)
    assert page.evaluate("() => document.querySelectorAll('#events-list .event').length") == 0

    stack["camera"].set_motion(True)
    event_id = _wait(page, """const li = document.querySelector(
        '#events-list .event[data-type="motion"][data-source="live"][data-ready="true"]');
        return li && li.dataset.eventId;""", "the motion event, live", 20)
    stack["camera"].set_motion(False)
    shown = page.evaluate("""(id) => {
      const li = document.getElementById('event-' + id);
      const img = li.querySelector('img');
      const area = li.querySelector('figure').getBoundingClientRect();
      return { text: li.textContent, camera: li.dataset.cameraId,
               thumb: [img.naturalWidth, img.naturalHeight],
               boxes: [...li.querySelectorAll('.box')].map((b) => {
                 const r = b.getBoundingClientRect();
                 return { box: JSON.parse(b.dataset.box), left: (r.left - area.left) / area.width,
                          width: r.width / area.width };
               }) };
    }""", event_id)
    detail = _api(stack, "GET", f"/events/{event_id}")
    assert shown["camera"] == device and "motion · 100 % · Door" in shown["text"]
    assert shown["thumb"] == [640, 360]  # the thumbnail itself, fetched with the token
    objects = [o["boundingBox"] for o in detail["detectedObjects"]]
    assert [b["box"] for b in shown["boxes"]] == [[o["x"], o["y"], o["width"], o["height"]]
                                                  for o in objects]
    for drawn, obj in zip(shown["boxes"], objects, strict=True):
        # Drawn where the camera frame has it (640 px wide), on the right where the block moves.
        assert abs(drawn["left"] - obj["x"] / 640) < 0.01 and drawn["left"] > 0.4, drawn
        assert abs(drawn["width"] - obj["width"] / 640) < 0.01, drawn
    assert detail["recordingId"] == recording["id"]  # the manual recording running then

    # Filters: another type hides it, its type and its camera show it.
    _type(page, "events-type", "person")
    _wait(page, f"!document.getElementById('event-{event_id}')", "hidden by type person")
    _type(page, "events-type", "motion")
    _type(page, "events-camera", device)
    _wait(page, f"document.getElementById('event-{event_id}')", "shown for motion, its camera")

    # A click plays the recording at the event's moment (once that segment is written).
    _recorded(stack, recording["id"],
              _when(detail["timestamp"]) - _when(recording["startTime"]) + 2.0)
    _api(stack, "POST", f"/recordings/{recording['id']}/stop")
    page.evaluate(f"() => document.getElementById('event-{event_id}').click()")
    _wait(page, f"""const d = document.getElementById('recording-detail');
        return !d.hidden && d.dataset.recordingId === {recording['id']!r};""",
          "the event's recording opened")
    try:
        played = _wait(page, """const v = document.getElementById('segment-video');
            return v.dataset.segmentId && v.currentTime > 0 && !v.paused
                   && { segment: v.dataset.segmentId, offset: Number(v.dataset.offset),
                        time: v.currentTime };""", "the recording playing at the moment", 45)
    except AssertionError as error:
        segments = _api(stack, "GET", f"/recordings/{recording['id']}/segments")
        event = _api(stack, "GET", f"/events/{event_id}")
        raise AssertionError(f"{error}; event {event}; segments {segments}") from None
    linked = _api(stack, "GET", f"/events/{event_id}")
    assert linked["segment"] is not None and played["segment"] == linked["segment"]["id"]
    offset = _when(linked["timestamp"]) - _when(linked["segment"]["startTime"])
    assert abs(played["offset"] - offset) < 0.01, (played, offset)
    assert played["time"] >= offset - 0.2, (played, offset)


def test_regions_drawn_over_the_snapshot_are_saved(stack: dict[str, Any], page: Page) -> None:
    device = stack["device_id"]
    _wait(page, f"document.querySelector('#detection-camera option[value=\"{device}\"]')",
          "the camera listed in the editor")
    _type(page, "detection-camera", device)
    _click(page, "detection-load")
    _wait(page, "document.getElementById('region-area').dataset.snapshot === 'ready'",
          "the camera's snapshot under the regions", 20)
    assert page.evaluate("() => document.getElementById('region-snapshot').naturalWidth") == 640
    # The effective settings came with the default full-frame region: remove it, draw one.
    assert page.evaluate("() => document.getElementById('region-name-0').value") == "Full Frame"
    _click(page, "region-remove-0")
    _click(page, "region-new")
    points = [[0.1, 0.2], [0.5, 0.2], [0.5, 0.9], [0.1, 0.9]]
    page.evaluate("""(points) => {
      const svg = document.getElementById('region-canvas');
      const r = svg.getBoundingClientRect();
      for (const [x, y] of points) {
        svg.dispatchEvent(new MouseEvent('click', { bubbles: true,
          clientX: r.left + x * r.width, clientY: r.top + y * r.height }));
      }
    }""", points)
    assert page.evaluate("() => document.querySelectorAll('#region-canvas circle').length") == 4
    _click(page, "region-finish")
    _type(page, "motion-min-area", "250")
    _click(page, "detection-save")
    _wait(page, "document.getElementById('detection-form').dataset.saved", "settings saved")

    saved = _api(stack, "GET", f"/cameras/{device}/detection")
    [region] = saved["regions"]
    assert region["name"] == "Region 1" and region["enabled"] is True
    assert len(region["coordinates"]) == 4
    for got, want in zip(region["coordinates"], points, strict=True):
        assert abs(got[0] - want[0]) < 0.01 and abs(got[1] - want[1]) < 0.01, (got, want)
    assert saved["motionDetection"]["minArea"] == 250
    assert page.evaluate("() => document.querySelectorAll('#region-canvas polygon').length") == 1
