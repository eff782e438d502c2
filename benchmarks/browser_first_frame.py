"""Benchmark: consume (or WHEP POST) → first frame in headless Chromium, step by step.

    sudo .venv/bin/python -m benchmarks.browser_first_frame [--gops 1 4] [--rounds 10]
        [--viewers 3] [--flows guide whep]

Runs as root (a network namespace: Chromium gathers no ICE candidates on loopback; see
tests/browser/netns.py). Inside one namespace: `vas up` as a user starts it (embedded
SQLite and Redis, default settings, INFO logs), a real RTSP test camera
(tests/camera/server.py: 640x360, 30 fps, x264 baseline ~2 Mbit/s, scrolling pattern) per
camera GOP, and Debian's Chromium driven by playwright-core (tests/browser/harness.py)
with the real npm mediasoup-client bundle (tests/browser/src/first_frame.js).

Per GOP, rounds alternate the two flows; a round waits a random moment of the GOP, then
`--viewers` viewers of one page join at once with
- guide: the integration guide's steps 3-8 as it writes them (router-capabilities →
  Device.load → consume → createRecvTransport → connect → transport.consume → resume →
  video.play);
- whep: RTCPeerConnection recvonly offer (ICE gathering awaited, as a non-trickle WHEP
  player does) → POST → answer;
and each page marks every step with performance.now() until the first frame is shown, then
watches `--settle-ms` more (what the receiver does with the rest of the GOP-cache burst).
Then the viewers leave (DELETE) and the next round begins.

Times are in ms from the flow's first media request: `POST /consume` for the guide (the
router-capabilities request and Device.load come before it, negative), the WHEP `POST`
for WHEP (gathering before it). The server's own "consumer transport … connected" log
line (DTLS up, burst sent) is put on the same clock (the page's timeOrigin is wall-clock).
Writes tables to stdout and every join's marks as JSON to `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import progress
from benchmarks.host import machine
from tests.browser.conftest import NetnsCamera, VasServer
from tests.browser.harness import DIST_DIR, Browser, Page, TestNetns, ensure_node_modules
from tests.camera import CameraProfile

PAGE_PATH = "/__vas_first_frame__/"
PAGE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>VAS first frame</title></head>
<body><script src="first_frame.js"></script></body></html>
"""
# Steps in the order they happen, per flow; the first media request is 0.
STEPS = {
    "guide": ("caps_sent", "caps_answered", "device_loaded", "consume_sent",
              "consume_answered", "transport_created", "connect_sent", "connect_answered",
              "consumed", "resumed", "play_called", "ice_connected", "server_connected",
              "dtls_connected", "transport_connected", "track_unmuted", "stats_first_rtp",
              "frame_received", "first_decoded", "stats_first_decoded", "first_presented",
              "first_rendered"),
    "whep": ("pc_created", "offer_created", "gathered", "post_sent", "post_answered",
             "ontrack", "play_called", "answer_applied", "ice_connected", "dtls_connected",
             "track_unmuted", "stats_first_rtp", "frame_received", "first_decoded",
             "stats_first_decoded", "first_presented", "first_rendered"),
}
ORIGIN = {"guide": "consume_sent", "whep": "post_sent"}
SETTLE_KEYS = ("rendered", "framesDecoded", "framesDropped", "keyFramesDecoded",
               "packetsReceived", "packetsLost", "nackCount", "pliCount", "freezeCount",
               "jitterBufferDelayMs", "totalDecodeTimeMs")
CONNECTED_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*consumer transport transport-(\S+) connected")


def quantile(values: list[float], q: float) -> float:
    """The q-th percentile (inclusive method); the value itself for a single sample."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def server_connected_times(log: str) -> dict[str, float]:
    """Wall-clock ms of each consumer's "consumer transport … connected" log line."""
    found = {}
    for line in log.splitlines():
        match = CONNECTED_LINE.match(line)
        if match:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            found[match.group(2)] = stamp.replace(tzinfo=UTC).timestamp() * 1000
    return found


def open_page(browser: Browser, origin: str) -> Page:
    """A tab on the VAS origin (a secure context) with the first-frame bundle loaded."""
    base = origin.rstrip("/") + PAGE_PATH
    page = browser.new_page([
        {"url": base + "index.html", "body": PAGE_HTML, "contentType": "text/html"},
        {"url": base + "first_frame.js", "path": str(DIST_DIR / "first_frame.js"),
         "contentType": "text/javascript"},
    ])
    page.goto(base + "index.html")
    page.evaluate("() => Boolean(window.vasFirstFrame)")
    return page


def join_round(page: Page, flow: str, viewers: int, stream: dict[str, str], token: str,
               origin: str, settle_ms: int) -> list[dict[str, Any]]:
    """`viewers` joins of `flow` at once; returns each join's marks (page clock)."""
    if flow == "guide":
        args = [{"token": token, "streamId": stream["id"], "producerId": stream["producer"],
                 "clientId": f"first-frame-{i}", "settleMs": settle_ms} for i in range(viewers)]
        source = "(a) => Promise.all(a.map((x) => vasFirstFrame.guide(x)))"
    else:
        url = f"{origin}/v2/streams/{stream['id']}/whep"
        args = [{"url": url, "token": token, "settleMs": settle_ms} for _ in range(viewers)]
        source = "(a) => Promise.all(a.map((x) => vasFirstFrame.whep(x)))"
    try:
        joins: list[dict[str, Any]] = page.evaluate(source, args, timeout=30)
    finally:
        page.evaluate("(a) => vasFirstFrame.stopAll(a)", {"token": token}, timeout=30)
    return joins


def relative(join: dict[str, Any], connected: dict[str, float]) -> dict[str, float]:
    """The join's marks in ms from its flow's origin (server log time included)."""
    marks = dict(join["marks"])
    consumer = join["info"].get("consumerId")
    if consumer in connected:
        marks["server_connected"] = connected[consumer] - join["timeOrigin"]
    zero = marks[ORIGIN[join["kind"]]]
    return {name: value - zero for name, value in marks.items()}


def table(flow: str, gop: float, joins: list[dict[str, float]],
          settles: list[dict[str, Any]]) -> str:
    rows = [f"GOP {gop:g} s, {flow}: {len(joins)} joins, ms from "
            f"{ORIGIN[flow].replace('_sent', '')} sent",
            "", "| step | n | p50 | p95 | max | p50 of the step's own share |",
            "| --- | --- | --- | --- | --- | --- |"]
    previous: str | None = None
    for step in STEPS[flow]:
        values = [j[step] for j in joins if step in j]
        if not values:
            continue
        shares = [j[step] - j[previous] for j in joins if step in j and previous in j] \
            if previous else []
        share = f"{quantile(shares, 50):.0f}" if shares else "-"
        rows.append(f"| {step} | {len(values)} | {quantile(values, 50):.0f} "
                    f"| {quantile(values, 95):.0f} | {max(values):.0f} | {share} |")
        previous = step
    if settles:
        rows.append("")
        rows.append(f"In the {settles[0].get('ms', 0)} ms after the first frame (p50 / max): "
                    + ", ".join(
                        f"{key} {quantile(vals, 50):.0f} / {max(vals):.0f}"
                        for key in SETTLE_KEYS
                        for vals in [[float(s[key]) for s in settles if s.get(key) is not None]]
                        if vals))
    return "\n".join(rows)


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"machine_before": machine(), "runs": []}
    with TestNetns() as netns:
        vas = VasServer(netns, workdir)
        vas.start()
        try:
            token = vas.admin_token()
            with Browser(netns) as browser, vas.client() as http:
                http.headers["Authorization"] = f"Bearer {token}"
                page = open_page(browser, vas.page_origin)
                results["chromium"] = browser.info.get("version")
                for gop in args.gops:
                    results["runs"] += measure_gop(args, netns, vas, http, page, token, gop)
        finally:
            vas.stop()
            results["server_log_tail"] = vas.log[-3000:]
    results["machine_after"] = machine()
    return results


def measure_gop(args: argparse.Namespace, netns: TestNetns, vas: VasServer, http: Any,
                page: Page, token: str, gop: float) -> list[dict[str, Any]]:
    profile = CameraProfile(width=640, height=360, fps=30, gop=round(30 * gop),
                            bitrate_kbps=2000, pattern="smpte", horizontal_speed=4)
    camera = NetnsCamera(netns, profile)
    camera.start()
    joins: list[dict[str, Any]] = []
    try:
        device = http.post("/api/v1/devices", json={"name": f"gop {gop:g} s",
                                                    "rtsp_url": camera.url})
        device.raise_for_status()
        started = http.post(f"/api/v1/devices/{device.json()['id']}/start-stream")
        started.raise_for_status()
        stream = {"id": started.json()["v2_stream_id"],
                  "producer": started.json()["producers"]["video"]}
        progress(f"GOP {gop:g} s: stream {stream['id']} live")
        time.sleep(gop + 1)  # a whole GOP in the cache
        for index in range(args.rounds):
            flows = args.flows if index % 2 == 0 else list(reversed(args.flows))
            for flow in flows:
                time.sleep(random.uniform(0.2, 0.2 + gop))  # join anywhere in the GOP
                for join in join_round(page, flow, args.viewers, stream, token,
                                       vas.page_origin, args.settle_ms):
                    join["gop"] = gop
                    joins.append(join)
                latest = joins[-args.viewers:]
                progress(f"GOP {gop:g} s {flow} round {index + 1}: first rendered " + ", ".join(
                    f"{j['marks']['first_rendered'] - j['marks'][ORIGIN[flow]]:.0f}"
                    for j in latest) + " ms")
        http.post(f"/api/v1/devices/{device.json()['id']}/stop-stream")
    finally:
        camera.stop()
    return joins


def report(results: dict[str, Any], gops: list[float], flows: list[str]) -> str:
    connected = server_connected_times(results.get("server_log", ""))
    out = []
    for gop in gops:
        for flow in flows:
            chosen = [j for j in results["runs"] if j["gop"] == gop and j["kind"] == flow]
            if chosen:
                out.append(table(flow, gop, [relative(j, connected) for j in chosen],
                                 [j["info"].get("settle", {}) for j in chosen]))
                out.append("")
    before, after = results["machine_before"], results["machine_after"]
    out.append(f"Chromium {results.get('chromium')}; {before['nproc']} x {before['cpu_model']}; "
               f"load average {' '.join(before['loadavg'])} before, "
               f"{' '.join(after['loadavg'])} after; {before['date_utc']} UTC")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gops", type=float, nargs="+", default=[1.0, 4.0],
                        help="camera GOP lengths in seconds")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per flow and GOP")
    parser.add_argument("--viewers", type=int, default=3, help="viewers joining at once")
    parser.add_argument("--flows", nargs="+", choices=("guide", "whep"),
                        default=["guide", "whep"])
    parser.add_argument("--settle-ms", type=int, default=1000,
                        help="how long to watch after the first frame")
    parser.add_argument("--json", type=Path, default=Path("artifacts/browser_first_frame.json"),
                        help="every join's marks (artifacts/ is not in git)")
    parser.add_argument("--table-from", type=Path, help="print the tables of an earlier JSON")
    args = parser.parse_args()
    if args.table_from:
        earlier = json.loads(args.table_from.read_text())
        print(report(earlier, earlier["args"]["gops"], earlier["args"]["flows"]))
        return
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates a network namespace")
    ensure_node_modules()
    with tempfile.TemporaryDirectory(prefix="browser-first-frame-") as tmp:
        results = run(args, Path(tmp))
        log = Path(tmp) / "vas.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        results["server_log"] = "\n".join(
            line for line in text.splitlines() if "consumer transport" in line)
    results["args"] = {"gops": args.gops, "rounds": args.rounds, "viewers": args.viewers,
                       "flows": args.flows, "settle_ms": args.settle_ms}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(report(results, args.gops, args.flows))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
