"""WebRTC consumers through a running VAS: consume → first decoded frame, and glass-to-glass.

    python -m benchmarks.webrtc --samples 20 --gops 1 4 --latency-seconds 10

A test camera (640x360, 30 fps, ~2 Mbit/s) burns its wall-clock time into each frame as a
pixel code before encoding. The Python consumer (`vas_client`, the guide's flow: consume →
connect → ICE-lite/DTLS → H.264 decode) joins at random moments of the GOP:
- first frame: from sending POST /consume to the first decoded frame;
- glass-to-glass: decode time minus the time written into the frame (camera encode, RTSP,
  VAS, WebRTC and decode included), on loopback, for live frames (after the GOP-cache
  burst a new consumer starts with).
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ADMIN_SECRET, Server, percentile, progress
from tests.camera import STAMP_BAND_HEIGHT, STAMP_CELLS, CameraProfile, TestCamera
from vas_client import StreamConsumer, VasClient


def stamp_of(image: np.ndarray) -> float | None:
    """The camera's time code from an RGB frame (the test camera's 64-cell strip)."""
    luma = image[:STAMP_BAND_HEIGHT].mean(axis=2)
    cell = image.shape[1] // STAMP_CELLS
    margin = cell // 4
    rows = slice(STAMP_BAND_HEIGHT // 4, STAMP_BAND_HEIGHT * 3 // 4)
    word = 0
    for index in range(STAMP_CELLS):
        block = luma[rows, index * cell + margin:(index + 1) * cell - margin]
        word = word << 1 | int(block.mean() >= 128)
    payload = (word >> 16).to_bytes(6, "big")
    if binascii.crc_hqx(payload, 0) != word & 0xFFFF:
        return None
    return int.from_bytes(payload, "big") / 1000


async def measure(
    url: str, stream_id: str, samples: int, latency_s: float, gop_s: float
) -> tuple[list[float], list[float]]:
    client = VasClient(url, "admin", ADMIN_SECRET)
    firsts: list[float] = []
    latencies: list[float] = []
    try:
        for index in range(samples):
            await asyncio.sleep(random.uniform(0.1, 1.2))  # join anywhere in the GOP
            began = time.perf_counter()
            async with StreamConsumer(client, stream_id, mode="guide",
                                      client_name=f"bench-{index}") as consumer:
                async for _ in consumer.frames(limit=1):
                    firsts.append(time.perf_counter() - began)
            progress(f"  first frame {index + 1}/{samples}: {firsts[-1] * 1000:.0f} ms")
        async with StreamConsumer(client, stream_id, mode="guide") as consumer:
            # The first frames are the GOP cache, sent at once and up to a GOP old by
            # design; glass-to-glass is measured on the live frames after them.
            live_from = time.monotonic() + gop_s + 0.5
            end = live_from + latency_s
            async for frame in consumer.frames():
                stamp = stamp_of(frame.image)
                if stamp is not None and time.monotonic() >= live_from:
                    latencies.append(frame.received_at - stamp)
                if time.monotonic() > end:
                    break
    finally:
        await client.aclose()
    return firsts, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--gops", type=float, nargs="+", default=[1.0, 4.0],
                        help="camera GOP lengths in seconds")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        try:
            for gop in args.gops:
                progress(f"GOP {gop:g} s")
                camera = TestCamera(CameraProfile(width=640, height=360, fps=30,
                                                  gop=int(30 * gop), bitrate_kbps=2000,
                                                  pattern="smpte", horizontal_speed=4,
                                                  overlay_time=True))
                camera.start()
                try:
                    device = server.http.post("/api/v1/devices", json={
                        "name": f"gop {gop:g}", "rtsp_url": camera.url}).json()["id"]
                    stream = server.http.post(
                        f"/api/v1/devices/{device}/start-stream").json()["v2_stream_id"]
                    time.sleep(gop + 1)
                    firsts, latencies = asyncio.run(
                        measure(server.url, stream, args.samples, args.latency_seconds, gop))
                    server.http.post(f"/api/v1/devices/{device}/stop-stream")
                finally:
                    camera.stop()
                rows.append(
                    f"| {gop:g} s | {len(firsts)} | {percentile(firsts, 50) * 1000:.0f} ms "
                    f"| {percentile(firsts, 95) * 1000:.0f} ms | {len(latencies)} "
                    f"| {percentile(latencies, 50) * 1000:.0f} ms "
                    f"| {percentile(latencies, 95) * 1000:.0f} ms |")
                progress(rows[-1])
        finally:
            server.close()
    print("| camera GOP | joins | consume → first frame p50 | p95 | frames timed "
          "| glass-to-glass p50 | p95 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
