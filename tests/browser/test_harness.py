"""The browser harness itself: Chromium in a namespace, the bundles, ICE on the test address."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from media.webrtc.capabilities import router_rtp_capabilities
from tests.browser.harness import (
    BUNDLES,
    DIST_DIR,
    SHOW_HOST_ADDRESSES,
    TEST_PAGE_HTML,
    Browser,
    TestNetns,
    descendants,
    netns_process,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def static_site(browser_bundles: dict[str, float], netns: TestNetns,
                tmp_path: Path) -> Iterator[str]:
    """``python -m http.server`` inside the namespace, serving the test page and bundles."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(TEST_PAGE_HTML)
    for name in BUNDLES:
        shutil.copy(DIST_DIR / name, site / name)
    port = netns.free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", netns.address,
               "--directory", str(site)]
    with netns_process(netns, command, tmp_path / "http.log") as server:
        netns.wait_listening(port, process=server)
        yield f"http://{netns.address}:{port}"


def _netns_inode(path: str) -> int:
    return os.stat(path).st_ino


GATHER_CANDIDATES = """async () => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const candidates = [];
  const done = new Promise((resolve) => {
    pc.onicecandidate = (e) => (e.candidate ? candidates.push(e.candidate) : resolve());
  });
  await pc.setLocalDescription(await pc.createOffer());
  await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
  pc.close();
  return candidates.map((c) => ({ type: c.type, address: c.address, protocol: c.protocol }));
}"""


def test_chromium_runs_in_the_namespace_and_loads_a_page_served_there(
    browser: Browser, netns: TestNetns, static_site: str, tmp_path: Path
) -> None:
    page = browser.new_page()
    assert page.goto(static_site + "/index.html") == 200
    assert page.evaluate("() => location.origin") == static_site
    assert page.evaluate("() => [typeof vasGuide.run, typeof vasWhep.start]") == [
        "function", "function"]
    assert "HeadlessChrome/" in browser.info["userAgent"]

    # The driver and every Chromium process below it live in the test namespace.
    driver = browser.pid
    assert driver is not None
    chromium = [pid for pid in descendants(driver)
                if "chrom" in Path(f"/proc/{pid}/comm").read_text()]
    assert chromium, "no chromium process under the driver"
    ns_inode = _netns_inode(f"/run/netns/{netns.name}")
    for pid in [driver, *chromium]:
        assert _netns_inode(f"/proc/{pid}/ns/net") == ns_inode, pid
    assert set(netns.pids()) >= {driver, *chromium}

    shot = page.screenshot(tmp_path / "page.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not page.logs()["errors"]


def test_bundled_mediasoup_client_loads_vas_router_capabilities(browser: Browser) -> None:
    # A secure origin (loopback inside the namespace), like a deployment's https page.
    page = browser.open_test_page("http://127.0.0.1:9")
    loaded = page.evaluate("(caps) => vasGuide.loadDevice(caps)",
                           router_rtp_capabilities("42e01f"))
    assert loaded["loaded"] is True
    assert loaded["handlerName"] == "Chrome111"
    h264 = [c for c in loaded["rtpCapabilities"]["codecs"] if c["mimeType"] == "video/H264"]
    assert h264, loaded["rtpCapabilities"]
    assert h264[0]["preferredPayloadType"] == 100
    assert h264[0]["parameters"]["packetization-mode"] == 1
    assert page.evaluate("() => vasGuide.mediasoupClientVersion") == "3.18.7"
    # A stream with audio: the Device takes Opus too (docs/codecs.md), at the router's type.
    with_audio = page.evaluate("(caps) => vasGuide.loadDevice(caps)",
                               router_rtp_capabilities("42e01f", audio=True))
    opus = [c for c in with_audio["rtpCapabilities"]["codecs"] if c["mimeType"] == "audio/opus"]
    assert len(opus) == 1 and opus[0]["preferredPayloadType"] == 101, with_audio
    assert (opus[0]["clockRate"], opus[0]["channels"]) == (48000, 2)
    # mediasoup-client keys Chromium's own extensions by id, which Chromium shares between
    # audio and video: the Device lists them once (as video), as with a mediasoup router;
    # the audio consumer's extensions are matched by URI and id, as mediasoup does.
    assert with_audio["rtpCapabilities"]["headerExtensions"] \
        == loaded["rtpCapabilities"]["headerExtensions"]
    assert not [c for c in loaded["rtpCapabilities"]["codecs"] if c["kind"] == "audio"]


def test_peer_connection_gathers_a_host_candidate_on_the_namespace_address(
    browser: Browser, browser_bundles: dict[str, float], netns: TestNetns
) -> None:
    # Stock Chromium hides the host address behind an mDNS name...
    page = browser.open_test_page("http://127.0.0.1:9")
    hidden = [c for c in page.evaluate(GATHER_CANDIDATES) if c["type"] == "host"]
    assert hidden and all(c["address"].endswith(".local") for c in hidden), hidden
    # ...which, shown, is the namespace's test address.
    with Browser(netns, extra_args=[SHOW_HOST_ADDRESSES]) as showing:
        page = showing.open_test_page("http://127.0.0.1:9")
        shown = [c for c in page.evaluate(GATHER_CANDIDATES) if c["type"] == "host"]
    assert netns.address in {c["address"] for c in shown if c["protocol"] == "udp"}, shown
