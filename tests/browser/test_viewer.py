"""The built-in viewer page (`/`) in Chromium, driven like a person, against `vas up` and an
RTSP camera in a namespace: sign in, add a device, start the camera's stream, watch it over
WHEP, take a snapshot and a bookmark, read the health panel, stop. The page is the one VAS
serves at http://127.0.0.1:PORT (a secure context for WebRTC)."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.routes.viewer import ASSETS
from core.clients import SCOPES
from tests.browser.harness import Page
from tests.browser.sound import SPY_PEER_CONNECTIONS, check_sound

pytestmark = pytest.mark.slow
SVG_NS = "http://www.w3.org/2000/svg"

# Every scope of the VAS guide's routes the page uses: what a person watching cameras would be
# given (the OmniSight scopes and `admin` are not).
VIEWER_SCOPES = [s for s in SCOPES if s.split(":")[0] in ("streams", "snapshots", "bookmarks")]


@pytest.fixture(scope="module")
def viewer_client(vas_stack: dict[str, Any]) -> dict[str, str]:
    """A fresh API client for the person at the page: its id and its secret."""
    client_id = f"viewer-{uuid.uuid4().hex[:8]}"
    with vas_stack["vas"].client() as http:
        created = http.post("/v2/auth/clients", json={"client_id": client_id,
                                                      "scopes": VIEWER_SCOPES},
                            headers={"Authorization": f"Bearer {vas_stack['token']}"})
    assert created.status_code == 201, created.text
    return {"id": client_id, "secret": created.json()["client_secret"]}


@pytest.fixture
def page(vas_stack: dict[str, Any]) -> Iterator[Page]:
    """A fresh tab on the viewer, loaded from VAS itself."""
    page: Page = vas_stack["browser"].new_page()
    assert page.goto(vas_stack["vas"].page_origin + "/") == 200
    yield page
    page.close()


# --- acting on the page like a person: type into fields, click visible enabled buttons ---


def _type(page: Page, element_id: str, text: str) -> None:
    page.evaluate("""([id, text]) => {
      const field = document.getElementById(id);
      field.focus();
      field.value = text;
      field.dispatchEvent(new Event('input', { bubbles: true }));
      field.dispatchEvent(new Event('change', { bubbles: true }));
    }""", [element_id, text])


def _wait(page: Page, predicate: str, what: str, timeout: float = 15.0) -> Any:
    """Poll ``predicate`` (a JS expression, or statements with ``return``) in the page until
    it is truthy; return its value. On timeout the page's status and error lines are in the
    failure message.
    """
    body = predicate if "return" in predicate else f"return ({predicate});"
    source = f"""async (ms) => {{
      const until = Date.now() + ms;
      for (;;) {{
        const value = (() => {{ {body} }})();
        if (value) return {{ ok: true, value }};
        if (Date.now() > until) {{
          return {{ ok: false, status: document.getElementById('status').textContent,
                    error: document.getElementById('error').textContent }};
        }}
        await new Promise((resolve) => setTimeout(resolve, 100));
      }}
    }}"""
    result = page.evaluate(source, int(timeout * 1000), timeout=timeout + 10)
    assert result["ok"], f"{what}: not within {timeout} s; page says {result}"
    return result["value"]


def _click(page: Page, element_id: str, timeout: float = 15.0) -> None:
    """Click ``#element_id`` once it is shown and enabled, as a person would wait for it."""
    _wait(page, f"""const el = document.getElementById({json.dumps(element_id)});
                 return el && !el.disabled && el.offsetParent !== null;""",
          f"#{element_id} clickable", timeout)
    page.evaluate("(id) => document.getElementById(id).click()", element_id)


def _text(page: Page, element_id: str) -> str:
    text: str = page.evaluate("(id) => document.getElementById(id).textContent", element_id)
    return text


def _error(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("""() => {
      const box = document.getElementById('error');
      return { shown: !box.hidden, text: box.textContent, code: box.dataset.code,
               status: box.dataset.status };
    }""")
    return result


# --- what the page shows, read the way a test can -------------------------------------------

VIDEO_PROGRESS = """() => {
  const video = document.getElementById('video');
  const quality = video.getVideoPlaybackQuality();
  return { currentTime: video.currentTime, totalVideoFrames: quality.totalVideoFrames,
           droppedVideoFrames: quality.droppedVideoFrames, presented: window.__presented ?? 0,
           videoWidth: video.videoWidth, videoHeight: video.videoHeight, paused: video.paused };
}"""

# Counts frames composited for #video (requestVideoFrameCallback), from the test's side.
COUNT_PRESENTED = """() => {
  const video = document.getElementById('video');
  window.__presented = 0;
  const tick = () => { window.__presented += 1; video.requestVideoFrameCallback(tick); };
  video.requestVideoFrameCallback(tick);
}"""

# The page schedules its token refresh with setTimeout (80% of the 1 h lifetime). Record
# such long timers so the test can run the page's own refresh now instead of in 48 min.
SPY_LONG_TIMERS = """() => {
  performance.setResourceTimingBufferSize(2000);
  const original = window.setTimeout;
  window.__longTimers = [];
  window.setTimeout = (callback, ms, ...args) => {
    if (ms >= 60000) window.__longTimers.push({ callback, ms });
    return original(callback, ms, ...args);
  };
}"""

FETCHES_OF = """(path) => performance.getEntriesByType('resource')
  .filter((e) => e.initiatorType === 'fetch' && new URL(e.name).pathname === path)
  .map((e) => e.responseStatus)"""


def _api(stack: dict[str, Any], method: str, path: str, **kwargs: Any) -> httpx.Response:
    http: httpx.Client
    with stack["vas"].client() as http:
        return http.request(method, path, headers={"Authorization": f"Bearer {stack['token']}"},
                            **kwargs)


def _save_artifact(page: Page, tmp_path: Path, name: str) -> Path:
    """A screenshot in pytest's tmp dir, copied to $VAS_TEST_ARTIFACTS when that is set."""
    shot = page.screenshot(tmp_path / name)
    target = os.environ.get("VAS_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / name)
    return shot


# --- tests ----------------------------------------------------------------------------------


def test_viewer_files_are_served_without_auth_and_without_caching(
    vas_stack: dict[str, Any],
) -> None:
    with vas_stack["vas"].client() as http:
        page = http.get("/")
        script = http.get("/static/viewer.js")
        style = http.get("/static/viewer.css")
        missing = http.get("/static/other.js")
        scripts = {name: http.get(f"/static/{name}") for name in ASSETS if name.endswith(".js")}
        revalidated = http.get("/static/viewer.js", headers={"If-None-Match": script.headers["etag"]})
        schema = http.get("/schema/openapi.json").json()
    for answer, kind in ((page, "text/html"), (script, "text/javascript"), (style, "text/css")):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith(kind)
        assert answer.headers["cache-control"] == "no-cache"
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/viewer.js"' in page.text
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert missing.status_code == 404 and "detail" in missing.json()
    assert "/" not in schema["paths"] and "/static/{name}" not in schema["paths"]
    for name in ASSETS:  # every script the page loads is served
        assert f'<script src="/static/{name}"' in page.text or not name.endswith(".js"), name
    # No third-party code: nothing is loaded from another origin, and tokens stay in memory.
    # (The SVG namespace of the region editor is a name, never fetched.)
    for text in (page.text, style.text, *(s.text.replace(SVG_NS, "") for s in scripts.values())):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    for name, answer in scripts.items():
        assert answer.status_code == 200, name
        for forbidden in ("localStorage.", "sessionStorage.", "document.cookie", "innerHTML"):
            assert forbidden not in answer.text, (name, forbidden)


def test_wrong_secret_shows_the_api_error(vas_stack: dict[str, Any], page: Page,
                                          viewer_client: dict[str, str]) -> None:
    _type(page, "client-id", viewer_client["id"])
    _type(page, "client-secret", "not-the-secret")
    _click(page, "sign-in")
    _wait(page, "!document.getElementById('error').hidden", "sign-in error shown")
    error = _error(page)
    assert error["text"] == "HTTP 401: Invalid client credentials", error
    assert page.evaluate("() => document.getElementById('workspace').hidden") is True
    assert page.evaluate("() => document.getElementById('client-secret').value") == ""


def test_viewer_flow_like_a_person(vas_stack: dict[str, Any], page: Page,
                                   viewer_client: dict[str, str], tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    camera = vas_stack["camera"].profile
    device_id = vas_stack["device_id"]
    page.evaluate(SPY_LONG_TIMERS)
    page.evaluate(SPY_PEER_CONNECTIONS)

    # Sign in.
    began = time.monotonic()
    _type(page, "client-id", viewer_client["id"])
    _type(page, "client-secret", viewer_client["secret"])
    _click(page, "sign-in")
    _wait(page, f"document.getElementById('start-{device_id}')", "device list after sign-in")
    timings["sign_in"] = time.monotonic() - began
    assert _text(page, "signed-in-as") == viewer_client["id"]
    assert page.evaluate("() => document.getElementById('client-secret').value") == ""
    refresh_timers = page.evaluate("() => window.__longTimers.map((t) => t.ms)")
    assert refresh_timers == [pytest.approx(0.8 * 3600 * 1000)], refresh_timers

    # Add a camera nobody answers for, start it: the guide's error code is shown.
    _type(page, "device-name", "Unreachable camera")
    _type(page, "device-url", f"rtsp://127.0.0.1:{vas_stack['netns'].free_port()}/cam")
    _click(page, "add-device")
    broken_id = _wait(page, """const rows = [...document.querySelectorAll('#devices tr')];
        const row = rows.find((r) => r.cells[0].textContent === 'Unreachable camera');
        return row && row.dataset.deviceId;""", "added device listed")
    began = time.monotonic()
    _click(page, f"start-{broken_id}")
    _wait(page, "document.getElementById('error').dataset.code", "start error shown", 40)
    timings["failed_start"] = time.monotonic() - began
    error = _error(page)
    assert error["code"] == "RTSP_CONNECTION_FAILED" and error["status"] == "502", error
    assert error["text"].startswith("RTSP_CONNECTION_FAILED (HTTP 502): "), error

    # Start the test camera's stream; the page watches it over WHEP.
    began = time.monotonic()
    _click(page, f"start-{device_id}")
    _wait(page, "document.getElementById('video').currentTime > 0", "video playing", 45)
    timings["start_to_playing"] = time.monotonic() - began
    assert not _error(page)["shown"], _error(page)
    page.evaluate(COUNT_PRESENTED)
    first = page.evaluate(VIDEO_PROGRESS)
    time.sleep(1.5)
    second = page.evaluate(VIDEO_PROGRESS)
    assert second["currentTime"] > first["currentTime"], (first, second)
    assert second["totalVideoFrames"] > first["totalVideoFrames"], (first, second)
    assert second["presented"] > first["presented"] >= 0 and second["presented"] >= 5, second
    assert (second["videoWidth"], second["videoHeight"]) == (camera.width, camera.height)
    assert second["paused"] is False
    check_sound(page, _click)  # the camera's AAC, heard as Opus; muted until unmuted

    live = _api(vas_stack, "GET", "/v2/streams", params={"camera_id": device_id,
                                                          "state": "LIVE"}).json()["streams"]
    assert len(live) == 1, live
    stream_id = live[0]["id"]
    assert _text(page, "watching").startswith(stream_id)
    consumers = _api(vas_stack, "GET", f"/v2/streams/{stream_id}/consumers").json()
    connected = [c for c in consumers["consumers"] if c["state"] == "CONNECTED"]
    assert len(connected) == 1, consumers

    # The health panel, refreshed every 2 s.
    _wait(page, """const health = document.getElementById('health');
        return health.dataset.state === 'LIVE'
          && Number(document.getElementById('health-bitrate').dataset.value) > 0;""",
          "health LIVE with a bitrate", 20)
    health = page.evaluate("""() => Object.fromEntries(['state', 'bitrate', 'fps', 'loss',
        'jitter', 'uptime'].map((k) => [k, document.getElementById('health-' + k).textContent]))""")
    assert health["state"] == "LIVE" and health["bitrate"].endswith("kbit/s"), health

    # Snapshot: the image as big as the camera's frames.
    began = time.monotonic()
    _click(page, "snapshot")
    image = _wait(page, """const img = document.getElementById('snapshot-image');
        return !img.hidden && img.complete && img.naturalWidth > 0
          && { width: img.naturalWidth, height: img.naturalHeight, src: img.src };""",
                  "snapshot shown", 30)
    timings["snapshot"] = time.monotonic() - began
    assert (image["width"], image["height"]) == (camera.width, camera.height), image
    assert image["src"].startswith("blob:"), image

    # Bookmark ±5 s, once the 5 s before the click are recorded.
    _wait(page, "Number(document.getElementById('health-uptime').dataset.value) >= 6",
          "6 s of uptime", 20)
    began = time.monotonic()
    _click(page, "bookmark")
    link = _wait(page, """const a = document.getElementById('bookmark-link');
        return !a.hidden && a.href.startsWith('blob:') && { href: a.href, text: a.textContent,
                                                            download: a.download };""",
                 "bookmark link shown", 45)
    timings["bookmark"] = time.monotonic() - began
    assert link["download"].startswith("bookmark-") and link["download"].endswith(".mp4"), link
    clip = _wait(page, """const v = document.getElementById('bookmark-video');
        return v.readyState >= 1 && { width: v.videoWidth, duration: v.duration };""",
                 "bookmark clip loaded", 15)
    assert clip["width"] == camera.width and 8.0 <= clip["duration"] <= 12.0, clip

    # The page's scheduled token refresh, run now: the session goes on with new tokens.
    page.evaluate("() => window.__longTimers[0].callback()")
    assert _wait(page, f"({FETCHES_OF})('/v2/auth/token/refresh').length > 0",
                 "refresh request") is True
    _wait(page, "window.__longTimers.length === 2", "next refresh scheduled")
    assert page.evaluate(FETCHES_OF, "/v2/auth/token/refresh") == [200]
    polls = len(page.evaluate(FETCHES_OF, f"/v2/streams/{stream_id}/health"))
    _wait(page, f"({FETCHES_OF})('/v2/streams/{stream_id}/health').length >= {polls + 2}",
          "health polls after the refresh", 10)
    assert set(page.evaluate(FETCHES_OF, f"/v2/streams/{stream_id}/health")) == {200}
    assert not _error(page)["shown"], _error(page)

    shot = _save_artifact(page, tmp_path, "viewer-live.png")

    # Stop: the WHEP session is deleted, then the stream.
    began = time.monotonic()
    _click(page, "stop")
    _wait(page, f"document.getElementById('status').textContent === 'Stream {stream_id} stopped.'",
          "stop confirmed", 30)
    timings["stop"] = time.monotonic() - began
    assert page.evaluate("() => document.getElementById('health').dataset.state") == "CLOSED"
    assert page.evaluate("() => document.getElementById('video').srcObject") is None
    assert not _error(page)["shown"], _error(page)
    _wait(page, f"""const row = document.querySelector('#streams tr[data-stream-id="{stream_id}"]');
        return row && row.cells[1].textContent === 'CLOSED';""", "stream listed CLOSED")
    status = httpx.get(f"{vas_stack['vas'].api_url}/api/v1/devices/{device_id}/status").json()
    assert status["streaming"]["active"] is False, status
    closed = _api(vas_stack, "GET", f"/v2/streams/{stream_id}/consumers").json()["consumers"]
    assert [c["state"] for c in closed] == ["CLOSED"], closed
    whep_session = f"/v2/streams/{stream_id}/whep/{connected[0]['id']}"
    assert page.evaluate(FETCHES_OF, whep_session) == [200]
    _save_artifact(page, tmp_path, "viewer-stopped.png")

    # Nothing was put in storage, and the page raised no uncaught error.
    storage = page.evaluate("""() => ({ local: localStorage.length,
        session: sessionStorage.length, cookie: document.cookie })""")
    assert storage == {"local": 0, "session": 0, "cookie": ""}, storage
    assert page.logs()["errors"] == []
    print(f"viewer flow: {', '.join(f'{k} {v:.2f} s' for k, v in timings.items())}; "
          f"video {second}; health {health}; snapshot {image['width']}x{image['height']}; "
          f"clip {clip}; screenshot {shot}")


def test_a_user_signs_in_with_email_and_password(vas_stack: dict[str, Any], page: Page) -> None:
    name = f"viewer{uuid.uuid4().hex[:6]}"
    email, password = f"{name}@example.com", "correct horse 42"
    with vas_stack["vas"].client() as http:
        created = http.post("/api/v1/auth/register",
                            json={"username": name, "email": email, "password": password})
    assert created.status_code == 201, created.text

    _type(page, "user-email", email)
    _type(page, "user-password", "not the password")
    _click(page, "user-sign-in")
    _wait(page, "!document.getElementById('error').hidden", "sign-in error shown")
    assert _error(page)["text"] == "UNAUTHORIZED (HTTP 401): Invalid email or password"
    assert page.evaluate("() => document.getElementById('user-password').value") == ""

    _type(page, "user-password", password)
    _click(page, "user-sign-in")
    _wait(page, f"document.getElementById('start-{vas_stack['device_id']}')",
          "device list after sign-in")
    assert _text(page, "signed-in-as") == email
    scopes = _text(page, "scopes")
    assert "streams:read" in scopes and "events:read" in scopes and "admin" not in scopes
    assert page.evaluate("() => document.getElementById('user-password').value") == ""

    # Signing out ends the session on the server too.
    page.evaluate("""() => {
      window.__calls = [];
      const original = window.fetch;
      window.fetch = async (path, init) => {
        const response = await original(path, init);
        window.__calls.push([String(path), response.status]);
        return response;
      };
    }""")
    _click(page, "sign-out")
    _wait(page, "!document.getElementById('sign-in-panel').hidden", "signed out")
    calls = page.evaluate("() => window.__calls")
    assert ["/api/v1/auth/logout", 200] in calls, calls
