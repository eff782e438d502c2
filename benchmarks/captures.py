"""Snapshots and clips through a running VAS: live snapshot request → image ready, and the
export time of a 60 s clip.

    python -m benchmarks.captures --snapshots 20 --clip-seconds 60

A 1080p30 ~4 Mbit/s test camera (GOP 2 s) is started through the API. Live snapshots:
`POST /v2/streams/{id}/snapshots` then poll `GET /v2/snapshots/{id}` every 20 ms until
`ready` (the job runs on the media node: decode the GOP cache up to the newest frame, JPEG
it). Clip: once the recording holds `--clip-seconds` + a margin, a historical bookmark of
that length is requested and timed until `ready` (a worker remuxes the segments into a
faststart MP4 without re-encoding and makes the thumbnail).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.common import Server, percentile, progress
from tests.camera import CameraProfile, TestCamera

CAMERA = CameraProfile(width=1920, height=1080, fps=30, gop=60, bitrate_kbps=4000,
                       pattern="smpte", horizontal_speed=4)


def wait_ready(server: Server, path: str, poll: float, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = server.http.get(path).json()
        if body["status"] != "processing":
            if body["status"] != "ready":
                raise RuntimeError(f"{path}: {body['status']}: {body.get('error')}")
            return body
        time.sleep(poll)
    raise TimeoutError(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--clip-seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        camera = TestCamera(CAMERA)
        camera.start()
        try:
            device = server.http.post("/api/v1/devices", json={
                "name": "bench", "rtsp_url": camera.url}).json()["id"]
            stream = server.http.post(f"/api/v1/devices/{device}/start-stream").json()[
                "v2_stream_id"]
            began_recording = datetime.now(UTC)
            time.sleep(3)
            snaps = []
            for index in range(args.snapshots):
                started = time.perf_counter()
                snap = server.http.post(f"/v2/streams/{stream}/snapshots",
                                        json={"source": "live"}).json()
                body = wait_ready(server, f"/v2/snapshots/{snap['id']}", poll=0.02)
                snaps.append(time.perf_counter() - started)
                progress(f"snapshot {index + 1}/{args.snapshots}: {snaps[-1] * 1000:.0f} ms "
                         f"({body['width']}x{body['height']}, {body['file_size']} bytes)")
                time.sleep(0.3)
            needed = args.clip_seconds + 8
            while (elapsed := (datetime.now(UTC) - began_recording).total_seconds()) < needed:
                progress(f"recording for the clip: {elapsed:.0f}/{needed:.0f} s")
                time.sleep(5)
            center = began_recording + timedelta(seconds=1 + args.clip_seconds / 2)
            started = time.perf_counter()
            bookmark = server.http.post(f"/v2/streams/{stream}/bookmarks", json={
                "source": "historical", "center_timestamp": center.isoformat(),
                "before_seconds": args.clip_seconds / 2, "after_seconds": args.clip_seconds / 2,
            }).json()
            ready = wait_ready(server, f"/v2/bookmarks/{bookmark['id']}", poll=0.05)
            export = time.perf_counter() - started
            size = len(server.http.get(ready["video_url"]).content)
            progress(f"clip ready in {export:.2f} s ({size / 1e6:.1f} MB)")
        finally:
            camera.stop()
            server.close()
    print("| what | samples | p50 | p95 | max |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| live snapshot, request → image ready (1080p, GOP 2 s) | {len(snaps)} | "
          f"{percentile(snaps, 50) * 1000:.0f} ms | {percentile(snaps, 95) * 1000:.0f} ms | "
          f"{max(snaps) * 1000:.0f} ms |")
    print(f"| {args.clip_seconds:g} s clip export, request → ready ({size / 1e6:.1f} MB MP4) "
          f"| 1 | {export * 1000:.0f} ms | - | - |")


if __name__ == "__main__":
    main()
