"""Ingest + HLS recording cost per camera, and start-stream → LIVE time.

    python -m benchmarks.ingest --profile 1080p --cameras 1 2 3 --seconds 20

For each camera count, N test cameras (GStreamer, x264, moving picture at the profile's
bitrate) are registered and started through the V1 API of a `vas up`; the media node's CPU
time (utime + stime from /proc) is sampled over `--seconds` once all are LIVE. The ingested
bitrate and fps are read back from the health endpoint, so the table shows what was really
carried. Test cameras run on the same machine: their own CPU is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Server, cpu_seconds, percentile, progress
from tests.camera import CameraProfile, TestCamera

PROFILES = {
    "720p": CameraProfile(width=1280, height=720, fps=30, gop=60, bitrate_kbps=2000,
                          pattern="smpte", horizontal_speed=4),
    "1080p": CameraProfile(width=1920, height=1080, fps=30, gop=60, bitrate_kbps=4000,
                           pattern="smpte", horizontal_speed=4),
}


def run(profile_name: str, counts: list[int], seconds: float, detection: bool) -> list[str]:
    profile = PROFILES[profile_name]
    rows = []
    idle: float | None = None
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            node = server.media_node_pid()
            if not detection:  # motion detection is on by default and decodes on the node
                server.http.put("/api/v1/detection/settings",
                                json={"enabled": False}).raise_for_status()
            for count in counts:
                progress(f"{profile_name}: starting {count} camera(s)")
                cameras = [TestCamera(profile) for _ in range(count)]
                for camera in cameras:
                    camera.start()
                starts, streams, devices = [], [], []
                for index, camera in enumerate(cameras):
                    device = server.http.post("/api/v1/devices", json={
                        "name": f"bench {index}", "rtsp_url": camera.url}).json()["id"]
                    began = time.perf_counter()
                    answer = server.http.post(f"/api/v1/devices/{device}/start-stream")
                    starts.append(time.perf_counter() - began)
                    answer.raise_for_status()
                    streams.append(answer.json()["v2_stream_id"])
                    devices.append(device)
                progress(f"{profile_name}: {count} LIVE; warming up")
                time.sleep(6 if count else 2)
                before, t0 = cpu_seconds(node), time.monotonic()
                time.sleep(seconds)
                used, elapsed = cpu_seconds(node) - before, time.monotonic() - t0
                health = [server.http.get(f"/v2/streams/{s}/health").json()["metrics"]
                          for s in streams]
                core_pct = 100 * used / elapsed
                if count == 0:
                    idle = core_pct
                    rows.append(f"| {profile_name} | 0 (idle node) | - | - | {core_pct:.1f} % "
                                "| - | - | - |")
                    progress(rows[-1])
                    continue
                kbps = statistics.mean(h["bitrate_kbps"] for h in health)
                fps = statistics.mean(h["fps"] for h in health)
                marginal = "-" if idle is None else f"{(core_pct - idle) / count:.2f} %"
                rows.append(
                    f"| {profile_name} | {count} | {kbps:.0f} | {fps:.1f} | {core_pct:.1f} % "
                    f"| {marginal} | {statistics.median(starts) * 1000:.0f} ms "
                    f"| {max(starts) * 1000:.0f} ms |")
                progress(rows[-1])
                for device in devices:
                    server.http.post(f"/api/v1/devices/{device}/stop-stream")
                for camera in cameras:
                    camera.stop()
        finally:
            server.close()
    return rows


def control_round_trip(samples: int) -> str:
    """API → media node → API through Redis: `GET /v2/nodes` pings the node's queue."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            rtts = []
            for _ in range(samples):
                nodes = server.http.get("/v2/nodes").json()["nodes"]
                rtts.append(float(nodes[0]["rtt_ms"]))
        finally:
            server.close()
    return (f"| control round trip (ping on the node's queue) | {samples} | "
            f"{percentile(rtts, 50):.1f} ms | {percentile(rtts, 95):.1f} ms | {max(rtts):.1f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=sorted(PROFILES), action="append")
    parser.add_argument("--cameras", type=int, nargs="+", default=[0, 1, 2, 3],
                        help="camera counts to measure; 0 measures the idle node")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--round-trips", type=int, default=100)
    parser.add_argument("--no-detection", action="store_true",
                        help="turn the default motion detection off: ingest and recording only")
    args = parser.parse_args()
    print("| profile | cameras | ingested kbit/s (mean) | fps (mean) | media node CPU "
          "(% of one core) | per camera above idle | start→LIVE p50 | start→LIVE max |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.profile or ["720p", "1080p"]:
        for row in run(name, args.cameras, args.seconds, not args.no_detection):
            print(row, flush=True)
    print()
    print("| what | samples | p50 | p95 | max |")
    print("| --- | --- | --- | --- | --- |")
    print(control_round_trip(args.round_trips))


if __name__ == "__main__":
    main()
