"""OmniSight live WebRTC with a server offer in headless Chromium: a plain RTCPeerConnection
takes the server's offer, answers (candidates gathered into the answer), decodes video and
plays the camera's sound (the stack's camera sends an AAC tone), or refuses the sound and
still gets the video."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.harness import Page
from tests.browser.sound import AUDIO_STATS, SPY_PEER_CONNECTIONS

pytestmark = pytest.mark.slow

# The whole client: what a page using the OmniSight document plus the answer step does.
START = """async ({base, token, rejectAudio}) => {
  const auth = {Authorization: `Bearer ${token}`};
  const offered = await fetch(base, {headers: auth});
  if (offered.status !== 200) throw new Error(`GET offer: ${offered.status} ${await offered.text()}`);
  const {sdpOffer, sessionId, iceServers} = await offered.json();
  const pc = new RTCPeerConnection({iceServers});
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  pc.addEventListener('track', (e) => {
    video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
    video.play().catch(() => {});
  });
  await pc.setRemoteDescription({type: 'offer', sdp: sdpOffer});
  // A viewer that takes no sound: its answer rejects the audio section (port 0).
  if (rejectAudio) pc.getTransceivers().filter((t) => t.receiver.track.kind === 'audio')
    .forEach((t) => t.stop());
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 5000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); }
      });
    });
  }
  const answered = await fetch(`${base}/${sessionId}`, {
    method: 'POST', headers: {...auth, 'Content-Type': 'application/json'},
    body: JSON.stringify({sdpAnswer: pc.localDescription.sdp})});
  window.serverOffer = {pc, video, sessionId, base, token};
  return {sessionId, answerStatus: answered.status, offer: sdpOffer};
}"""

PROGRESS = """async () => {
  const {pc, video} = window.serverOffer;
  let framesDecoded = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded = s.framesDecoded || 0;
  });
  return {framesDecoded, width: video.videoWidth, height: video.videoHeight,
          currentTime: video.currentTime, connectionState: pc.connectionState};
}"""

STOP = """async () => {
  const {pc, sessionId, base, token} = window.serverOffer;
  const response = await fetch(`${base}/${sessionId}`, {
    method: 'DELETE', headers: {Authorization: `Bearer ${token}`}});
  pc.close();
  return response.status;
}"""


@pytest.fixture
def page(vas_stack: dict[str, Any]) -> Iterator[Page]:
    page: Page = vas_stack["browser"].open_test_page(vas_stack["vas"].page_origin)
    yield page
    page.close()


def test_server_offer_decodes_in_chromium(vas_stack: dict[str, Any], page: Page) -> None:
    token = vas_stack["token"]
    with vas_stack["vas"].client() as http:
        started = http.post(f"/api/v1/devices/{vas_stack['device_id']}/start-stream")
    assert started.status_code == 200, started.text
    stream_id = started.json()["v2_stream_id"]
    base = f"{vas_stack['vas'].page_origin}/api/v1/cameras/{vas_stack['device_id']}/live/webrtc"
    session = page.evaluate(START, {"base": base, "token": token}, timeout=30)
    assert session["answerStatus"] == 204, session
    deadline = time.monotonic() + 20
    while True:
        progress = page.evaluate(PROGRESS)
        if progress["framesDecoded"] >= 15 and progress["width"]:
            break
        assert time.monotonic() < deadline, progress
        time.sleep(0.2)
    assert progress["connectionState"] == "connected"
    assert (progress["width"], progress["height"]) == (640, 360)
    time.sleep(1.0)
    later = page.evaluate(PROGRESS)
    assert later["framesDecoded"] > progress["framesDecoded"], (progress, later)
    with vas_stack["vas"].client() as http:
        consumers = http.get(f"/v2/streams/{stream_id}/consumers",
                             headers={"Authorization": f"Bearer {token}"}).json()["consumers"]
    mine = next(c for c in consumers if c["id"] == session["sessionId"])
    assert mine["state"] == "CONNECTED"
    assert page.evaluate(STOP) == 204
    with vas_stack["vas"].client() as http:
        consumers = http.get(f"/v2/streams/{stream_id}/consumers",
                             headers={"Authorization": f"Bearer {token}"}).json()["consumers"]
    assert next(c for c in consumers if c["id"] == session["sessionId"])["state"] == "CLOSED"


def _start_stream(stack: dict[str, Any]) -> None:
    with stack["vas"].client() as http:
        started = http.post(f"/api/v1/devices/{stack['device_id']}/start-stream")
    assert started.status_code == 200, started.text


def _wait_frames(page: Page, frames: int = 15) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        progress = page.evaluate(PROGRESS)
        if progress["framesDecoded"] >= frames and progress["width"]:
            return dict(progress)
        assert time.monotonic() < deadline, progress
        time.sleep(0.2)


def test_server_offer_plays_the_cameras_sound_in_chromium(vas_stack: dict[str, Any],
                                                          page: Page) -> None:
    _start_stream(vas_stack)
    page.evaluate(SPY_PEER_CONNECTIONS)
    base = f"{vas_stack['vas'].page_origin}/api/v1/cameras/{vas_stack['device_id']}/live/webrtc"
    session = page.evaluate(START, {"base": base, "token": vas_stack["token"]}, timeout=30)
    assert session["answerStatus"] == 204, session
    assert "a=group:BUNDLE audio video" in session["offer"]
    _wait_frames(page)
    # One MediaStream holds both tracks: `video.srcObject = event.streams[0]` plays both.
    tracks = page.evaluate("""() => {
      const {video} = window.serverOffer;
      video.muted = false;
      return [video.srcObject.getAudioTracks().length, video.srcObject.getVideoTracks().length];
    }""")
    assert tracks == [1, 1], tracks
    stats = page.evaluate(AUDIO_STATS, timeout=20)
    assert stats and stats["mime"] == "audio/opus" and stats["packets"] > 0, stats
    assert stats["level"] > 0, stats  # the camera's tone, not silence
    assert page.evaluate(STOP) == 204


def test_server_offer_answer_refusing_the_sound_still_plays_video(vas_stack: dict[str, Any],
                                                                  page: Page) -> None:
    _start_stream(vas_stack)
    base = f"{vas_stack['vas'].page_origin}/api/v1/cameras/{vas_stack['device_id']}/live/webrtc"
    session = page.evaluate(START, {"base": base, "token": vas_stack["token"],
                                    "rejectAudio": True}, timeout=30)
    assert session["answerStatus"] == 204, session
    progress = _wait_frames(page)
    assert (progress["width"], progress["height"]) == (640, 360)
    assert progress["connectionState"] == "connected"
    audio = page.evaluate("""async () => {
      let packets = 0;
      (await window.serverOffer.pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') packets += s.packetsReceived;
      });
      return packets;
    }""")
    assert audio == 0
    assert page.evaluate(STOP) == 204
