"""Timing targets of DESIGN §5 measured through the product (the API, a real media node, a
real camera, the Python client), not through one piece alone. `make perf` runs them; they are
not part of `make test` (docs/testing.md). Figures go to docs/performance.md."""

from __future__ import annotations

import statistics
import time

import pytest

from tests.vas_fixtures import add_device
from vas_client import StreamConsumer, VasClient

pytestmark = [pytest.mark.perf, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

START_TO_LIVE_P50_S = 0.5
CONSUME_TO_FIRST_FRAME_P50_S = 0.1


async def test_start_stream_to_live_through_the_api(client, media_node, start_camera):
    took = []
    for _ in range(5):
        camera = start_camera(width=640, height=360, fps=25, gop=25)
        device_id = await add_device(client, camera.url)
        began = time.monotonic()
        answer = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
        took.append(time.monotonic() - began)
        assert answer.status_code == 200, answer.text
        await client.post(f"/api/v1/devices/{device_id}/stop-stream")
    p50 = statistics.median(took)
    print(f"\nstart-stream → LIVE answer: p50 {p50 * 1000:.0f} ms, max {max(took) * 1000:.0f} ms")
    assert p50 <= START_TO_LIVE_P50_S


@pytest.mark.parametrize("mode", ["guide", "whep"])
async def test_consume_to_first_frame_through_the_api(client, admin_token, media_node,
                                                      start_camera, mode):
    camera = start_camera(width=640, height=360, fps=25, gop=100)  # a 4 s GOP
    device_id = await add_device(client, camera.url)
    stream_id = (await client.post(f"/api/v1/devices/{device_id}/start-stream",
                                   timeout=60)).json()["v2_stream_id"]
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = admin_token, time.monotonic() + 600
    took = []
    for _ in range(5):
        began = time.monotonic()
        async with StreamConsumer(vas, stream_id, mode=mode, local_ip="127.0.0.1") as viewer:
            async for _frame in viewer.frames(limit=1):
                took.append(time.monotonic() - began)
    p50 = statistics.median(took)
    print(f"\n{mode}: consume → first decoded frame p50 {p50 * 1000:.0f} ms, "
          f"max {max(took) * 1000:.0f} ms")
    assert p50 <= CONSUME_TO_FIRST_FRAME_P50_S
