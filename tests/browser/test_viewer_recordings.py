"""The viewer page's recordings: a camera's sessions on a timeline, a recording started and
stopped from the page, its thumbnail strip, a segment played natively in <video> by a click
on its thumbnail and by a click on a moment of the time bar (Chromium)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.harness import Page
from tests.browser.test_viewer import _click, _type, _wait

pytestmark = pytest.mark.slow

SCOPES = ["streams:read", "streams:write", "streams:consume", "snapshots:read",
          "snapshots:write", "bookmarks:read", "recordings:read", "recordings:write"]

SEGMENT_PLAYING = """() => {
  const video = document.getElementById('segment-video');
  return { segmentId: video.dataset.segmentId, currentTime: video.currentTime,
           width: video.videoWidth, height: video.videoHeight, paused: video.paused,
           hidden: video.hidden };
}"""


@pytest.fixture
def page(vas_stack: dict[str, Any]) -> Iterator[Page]:
    page: Page = vas_stack["browser"].new_page()
    assert page.goto(vas_stack["vas"].page_origin + "/") == 200
    yield page
    page.close()


def test_recordings_timeline_plays_segments(vas_stack: dict[str, Any], page: Page) -> None:
    client_id = f"recorder-{uuid.uuid4().hex[:8]}"
    with vas_stack["vas"].client() as http:
        created = http.post("/v2/auth/clients", json={"client_id": client_id, "scopes": SCOPES},
                            headers={"Authorization": f"Bearer {vas_stack['token']}"})
    assert created.status_code == 201, created.text
    device_id = vas_stack["device_id"]
    camera = vas_stack["camera"].profile

    _type(page, "client-id", client_id)
    _type(page, "client-secret", created.json()["client_secret"])
    _click(page, "sign-in")
    _click(page, f"start-{device_id}", 30)
    _wait(page, "document.getElementById('video').currentTime > 0", "live video", 45)
    # The stream's own recording is on the timeline as a continuous session.
    _wait(page, "document.querySelector('#timeline .session.continuous')",
          "continuous session on the timeline", 20)

    _type(page, "record-duration", "10")
    _click(page, "record-start")
    recording_id = _wait(page, """const d = document.getElementById('recording-detail');
        return !d.hidden && !document.getElementById('record-stop').hidden
               && d.dataset.recordingId;""", "recording started", 30)
    _wait(page, f"document.getElementById('recording-{recording_id}')", "manual session shown")
    # Segments appear while it records (exported as it proceeds), with thumbnails.
    _wait(page, "document.querySelectorAll('#segment-strip img').length >= 1",
          "a first segment thumbnail", 60)
    time.sleep(2)  # a little more than one segment, so that the bar has two to choose from
    _click(page, "record-stop")
    _wait(page, """document.getElementById('record-stop').hidden
        && !document.getElementById('recording-title').textContent.includes('more coming')
        && document.querySelectorAll('#segment-strip img').length >= 2""",
          "recording completed with its segments", 60)
    thumbs = page.evaluate("""() => [...document.querySelectorAll('#segment-strip img')]
        .map((img) => [img.naturalWidth, img.naturalHeight])""")
    assert all(size == [camera.width, camera.height] for size in thumbs), thumbs

    first_segment = page.evaluate(
        "() => document.querySelector('#segment-strip .segment').id.slice(8)")
    _click(page, f"segment-{first_segment}")
    playing = _wait(page, """const v = document.getElementById('segment-video');
        return v.currentTime > 0.5 && v.videoWidth > 0 && v.dataset.segmentId;""",
                    "first segment playing", 20)
    assert playing == first_segment
    state = page.evaluate(SEGMENT_PLAYING)
    assert (state["width"], state["height"]) == (camera.width, camera.height)
    assert not state["paused"] and not state["hidden"]

    # A click near the end of the time bar plays the last segment, from that moment.
    page.evaluate("""() => {
      const bar = document.getElementById('segment-bar').getBoundingClientRect();
      document.getElementById('segment-bar').dispatchEvent(new MouseEvent('click', {
        bubbles: true, clientX: bar.left + bar.width * 0.95, clientY: bar.top + 2 }));
    }""")
    last = page.evaluate("""() => [...document.querySelectorAll('#segment-strip .segment')]
        .pop().id.slice(8)""")
    _wait(page, f"""const v = document.getElementById('segment-video');
        return v.dataset.segmentId === {last!r} && v.currentTime > 0.5;""",
          "the moment's segment playing", 20)
