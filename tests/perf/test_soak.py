"""Soak: cameras streaming to many viewers for a long time on the default settings. The
media node's memory must stop growing after a warm-up (< 5 % growth), its threads and file
descriptors stay flat, no viewer gets stuck (every one still receives frames at the end,
every consumer still CONNECTED), and the node logs no error.

Marked `perf` (not in `make test`; the CI's 2-minute version of these checks is the camera
flap drill, tests/defaults/test_camera_flaps.py). `python -m benchmarks.drills --soak 3600`
runs the issue's size: 10 cameras, 50 viewers, one hour (VAS_SOAK_CAMERAS, VAS_SOAK_VIEWERS,
VAS_SOAK_SECONDS; `make perf` runs 2 cameras, 4 viewers, 2 minutes)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.drill_viewers import Viewer, in_process_client, slope, usage
from tests.vas_fixtures import add_device

pytestmark = [pytest.mark.perf, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

CAMERAS = int(os.environ.get("VAS_SOAK_CAMERAS", "2"))
VIEWERS = int(os.environ.get("VAS_SOAK_VIEWERS", "4"))
SECONDS = float(os.environ.get("VAS_SOAK_SECONDS", "120"))
SAMPLE_S = 5.0
WARM_UP = 0.25  # the first quarter fills codec, WebRTC and allocator pools


async def test_soak(client: httpx.AsyncClient, admin_token: str, start_process: Any,
                    start_camera: Any) -> None:
    node = start_process("media-node", "registered",
                         VAS_NODE_CAPACITY=str(max(16, CAMERAS)))
    headers = bearer(admin_token)
    streams = []
    for _ in range(CAMERAS):
        camera = start_camera(width=320, height=240, fps=10, gop=20)
        device_id = await add_device(client, camera.url)
        started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
        assert started.status_code == 200, started.text
        streams.append(started.json()["v2_stream_id"])
    vas = in_process_client(client, admin_token)
    viewers = [Viewer(vas, streams[i % CAMERAS], ("guide", "whep")[i % 2])
               for i in range(VIEWERS)]
    for viewer in viewers:
        viewer.start()
        await asyncio.sleep(0.2)
    began = time.monotonic()
    for viewer in viewers:
        await viewer.frame_after(began - 60, 60)
    samples: list[tuple[float, int, int, int]] = []
    try:
        while (now := time.monotonic()) - began < SECONDS:
            samples.append((now - began, *usage(node.proc.pid)))
            await asyncio.sleep(SAMPLE_S)
        end = time.monotonic()
        stuck = [v.mode for v in viewers if end - v.last_frame > 10]
        consumers = []
        for stream_id in streams:
            listed = (await client.get(f"/v2/streams/{stream_id}/consumers",
                                       headers=headers)).json()
            consumers += [c["state"] for c in listed["consumers"] if c["state"] != "CLOSED"]
    finally:
        for viewer in viewers:
            await viewer.stop()
    warm = [s for s in samples if s[0] >= SECONDS * WARM_UP]
    rss = [s[3] for s in warm]
    growth = (rss[-1] - rss[0]) / rss[0]
    threads, fds = [s[1] for s in warm], [s[2] for s in warm]
    reattached = sum(v.attached - 1 for v in viewers)
    logged = [line for line in node.lines if " ERROR " in line or "Traceback" in line]
    print(f"soak: {CAMERAS} cameras, {VIEWERS} viewers, {SECONDS / 60:.0f} min; node RSS "
          f"{samples[0][3] >> 20} MiB at start, {rss[0] >> 20} MiB after warm-up, "
          f"{rss[-1] >> 20} MiB at the end ({growth * 100:+.1f} %, slope "
          f"{slope([float(r) for r in rss]) / 1024 / SAMPLE_S * 60:+.0f} KiB/min); threads "
          f"{threads[0]}→{threads[-1]}, fds {fds[0]}→{fds[-1]}; frames per viewer "
          f"{min(v.frames for v in viewers)} to {max(v.frames for v in viewers)}; re-attaches "
          f"{reattached}; stuck viewers {len(stuck)}; open consumers {len(consumers)}/{VIEWERS}; "
          f"errors logged {len(logged)}")
    for line in logged[:10]:
        print(f"soak: node logged: {line}")
    assert growth < 0.05, rss
    assert abs(threads[-1] - threads[0]) <= 2 and abs(fds[-1] - fds[0]) <= 4, (threads, fds)
    assert stuck == [] and consumers == ["CONNECTED"] * VIEWERS, (stuck, consumers)
    assert logged == [], logged[:5]
