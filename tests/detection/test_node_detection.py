"""The media node's side of detection, with a real media-node process and a real scene
camera: sampling and motion at the camera's settings, `detect` jobs with the frame and the
motion boxes, the queue bound, settings changes on a running stream, zero decode when off.

No detection worker runs here, so every job the node sends stays on the queue to be read.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import cv2
import numpy as np
import pytest

from core.tables import Stream
from tests.detection.conftest import DETECT_QUEUE_MAX
from tests.detection.helpers import (
    LEFT_HALF,
    RIGHT_SIDE,
    SCENE,
    detect_jobs,
    set_detection,
    start_stream,
    wait_counters,
    wait_segment,
)
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow
INTERVAL_MS = 500
MOTION = {"enabled": True, "sensitivity": 0.5, "minArea": 100}
COUNTS = ("packets", "packets_dropped", "decoded", "samples", "motion_samples", "jobs_sent",
          "jobs_skipped")


async def test_still_then_motion_on_the_right_sends_a_job_with_its_box(
    client, admin_token, settings, media_node, start_camera
):
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE)
    device = await add_device(client, camera.url)
    await set_detection(client, admin_token, device, {
        "detectionInterval": INTERVAL_MS, "motionDetection": MOTION})
    stream = await start_stream(client, device)

    still = await wait_counters(stream, lambda c: c["samples"] >= 6)
    assert still["motion_samples"] == 0 and still["jobs_sent"] == 0, still
    assert detect_jobs(settings) == []

    camera.set_motion(True)
    moving_since = time.time()
    await wait_counters(stream, lambda c: c["jobs_sent"] >= 1)
    job = detect_jobs(settings)[0]
    assert str(job.camera_id) == device and str(job.stream_id) == stream
    assert job.frame_size == (640, 360) and job.source_size == (640, 360)
    # Found within two intervals of the object starting to move (stream time, not CPU time).
    assert job.wallclock - moving_since <= 2 * INTERVAL_MS / 1000, job.wallclock - moving_since
    assert job.motion, job
    for x, y, w, h in job.motion:  # where the block moves: the right side
        assert x + w / 2 > 0.5 * 640 and 0.2 * 360 <= y + h / 2 <= 0.8 * 360, job.motion
    image = cv2.imdecode(np.frombuffer(job.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (360, 640, 3)

    # Nobody takes the jobs: past the bound the node skips frames and counts them.
    skipping = await wait_counters(stream, lambda c: c["jobs_skipped"] >= 2)
    assert skipping["jobs_sent"] == DETECT_QUEUE_MAX
    assert len(detect_jobs(settings)) == DETECT_QUEUE_MAX


async def test_detection_off_decodes_nothing_and_turns_on_without_a_restart(
    client, admin_token, settings, media_node, start_camera
):
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE,
                          moving=True)
    device = await add_device(client, camera.url)
    await set_detection(client, admin_token, device, {
        "enabled": False, "detectionInterval": INTERVAL_MS, "motionDetection": MOTION})
    stream = await start_stream(client, device)

    # The ingest runs (a segment of several seconds is recorded) while detection is off.
    await wait_segment(stream)
    off = await wait_counters(stream, lambda c: c["settings_reads"] >= 1)
    assert {key: off[key] for key in COUNTS} == dict.fromkeys(COUNTS, 0), off
    assert detect_jobs(settings) == []

    await set_detection(client, admin_token, device, {
        "enabled": True, "detectionInterval": INTERVAL_MS, "motionDetection": MOTION})
    on = await wait_counters(stream, lambda c: c["samples"] >= 2 and c["decoded"] > 0)
    assert on["packets"] > 0
    assert await start_stream(client, device) == stream  # the same stream, never restarted


async def test_motion_outside_every_enabled_region_sends_nothing(
    client, admin_token, settings, media_node, start_camera
):
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE)
    device = await add_device(client, camera.url)
    await set_detection(client, admin_token, device, {
        "detectionInterval": INTERVAL_MS, "motionDetection": MOTION,
        "regions": [{"name": "left", "coordinates": LEFT_HALF, "enabled": True}]})
    stream = await start_stream(client, device)
    await wait_counters(stream, lambda c: c["samples"] >= 4)
    camera.set_motion(True)
    start = await wait_counters(stream, lambda c: True)
    after = await wait_counters(stream, lambda c: c["samples"] >= start["samples"] + 8)
    assert after["motion_samples"] == 0 and after["jobs_sent"] == 0, after
    assert detect_jobs(settings) == []

    # Motion detection off with objects on: every sample goes to the object detector.
    await set_detection(client, admin_token, device, {
        "detectionInterval": INTERVAL_MS, "motionDetection": {**MOTION, "enabled": False},
        "regions": [{"name": "left", "coordinates": LEFT_HALF, "enabled": True}]})
    sent = await wait_counters(stream, lambda c: c["jobs_sent"] >= 1)
    assert sent["motion_samples"] == 0
    assert detect_jobs(settings)[0].motion == []


# Each row: a motion-scene camera, a motion setting under which its moving block does not
# count, and one under which it does (docs/detection.md, "Motion").
# - minArea: the block is 56x108 camera pixels, 28x54 = 1512 pixels of the 320x180 analysis
#   frame; it moves inside an area of 144x108 = 15552 analysis pixels, so no blob of it
#   reaches 20000, and its blob is well over 300.
# - sensitivity: a block 52 grey levels above a black picture is under the threshold of
#   sensitivity 0 (68 levels) and over that of sensitivity 0.5 (38 levels).
DECIDING_SETTINGS = {
    "min_area": ({"pattern": "smpte100"}, {"minArea": 20000}, {"minArea": 300}),
    "sensitivity": ({"pattern": "black", "object_grey": 52}, {"sensitivity": 0.0},
                    {"sensitivity": 0.5}),
}


@pytest.mark.parametrize("setting", DECIDING_SETTINGS)
async def test_a_motion_setting_decides_whether_the_block_counts(
    client, admin_token, settings, media_node, start_camera, setting
):
    scene, ignores, counts = DECIDING_SETTINGS[setting]
    camera = start_camera(SCENE, scene="motion", object_area=RIGHT_SIDE, **scene)
    device = await add_device(client, camera.url)
    await set_detection(client, admin_token, device, {
        "detectionInterval": INTERVAL_MS, "motionDetection": {**MOTION, **ignores}})
    stream = await start_stream(client, device)
    await wait_counters(stream, lambda c: c["samples"] >= 4)
    camera.set_motion(True)
    start = await wait_counters(stream, lambda c: True)
    ignored = await wait_counters(stream, lambda c: c["samples"] >= start["samples"] + 8)
    assert ignored["motion_samples"] == 0 and ignored["jobs_sent"] == 0, ignored

    await set_detection(client, admin_token, device, {
        "detectionInterval": INTERVAL_MS, "motionDetection": {**MOTION, **counts}})
    counted = await wait_counters(stream, lambda c: c["motion_samples"] >= 1)
    assert counted["jobs_sent"] >= 1


async def stream_metrics(stream_id: str) -> dict[str, Any]:
    row = await Stream.select(Stream.metrics).where(Stream.id == uuid.UUID(stream_id)).first()
    metrics = row["metrics"] if row else None
    metrics = json.loads(metrics) if isinstance(metrics, str) else metrics
    assert isinstance(metrics, dict), metrics
    return metrics


async def test_every_sample_one_interval_after_a_settings_change_uses_it(
    client, admin_token, settings, media_node, start_camera
):
    # The default interval; a block moving on the right that counts at minArea 100 and not
    # at 20000 (DECIDING_SETTINGS). Judged on the node's own sample times, not on waits.
    interval = 1.0
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE)
    device = await add_device(client, camera.url)
    await set_detection(client, admin_token, device, {
        "detectionInterval": int(interval * 1000), "motionDetection": MOTION})
    stream = await start_stream(client, device)
    await wait_counters(stream, lambda c: c["samples"] >= 3)  # calibrated on the still scene
    camera.set_motion(True)
    before = await wait_counters(stream, lambda c: c["motion_samples"] >= 3)
    reconnects = (await stream_metrics(stream))["reconnects"]

    changed_at = time.time()  # just before the PUT: every bound below is from here
    await set_detection(client, admin_token, device, {
        "detectionInterval": int(interval * 1000),
        "motionDetection": {**MOTION, "minArea": 20000}})
    after = await wait_counters(stream, lambda c: (
        c["settings_applied_at"] >= changed_at
        and c["last_sample_at"] > changed_at + interval
        and c["samples"] >= before["samples"] + 4))
    # The node put the change in force within the interval, so the first sample taken more
    # than one interval after the PUT, and every later one, ran with it: none found motion
    # (the block still moves), while samples went on.
    assert after["settings_applied_at"] - changed_at <= interval, after
    assert after["last_motion_at"] <= changed_at + interval, after
    assert after["motion_samples"] >= before["motion_samples"]
    # Without restarting the stream: the same detection (its counters went on, none fell
    # back to 0), the same ingest (no reconnect), the same stream.
    assert all(after[key] >= before[key] for key in COUNTS), (before, after)
    assert (await stream_metrics(stream))["reconnects"] == reconnects
    assert await start_stream(client, device) == stream


async def test_a_scene_moving_from_the_streams_start_gets_motion(
    client, admin_token, settings, media_node, start_camera
):
    # No still frame to calibrate on: the block moves from the first frame. Calibration
    # ends after four frames anyway (docs/detection.md, "Motion detector").
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE,
                          moving=True)
    device = await add_device(client, camera.url)
    await set_detection(client, admin_token, device, {"motionDetection": MOTION})
    stream = await start_stream(client, device)
    seen = await wait_counters(stream, lambda c: c["samples"] >= 10)
    assert seen["motion_samples"] >= 3, seen
    assert seen["jobs_sent"] >= 1
