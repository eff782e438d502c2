"""Detection at the product's defaults, unchanged: a camera nobody configured (interval,
motion, `minArea`, `minConfidence`, object types as core defines them) on a real media node,
a real `detect` worker, Redis and the database. A still scene gives nothing; a person
walking across it gives a `person` event whose box is where the person is in the frame the
event keeps, and a `motion` event whose box holds the person."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import cv2
import numpy as np
import pytest

from core import detection_settings, system_settings
from core.events import EventFilter, EventRecord, EventService
from tests.camera import PERSON_CROP, PERSON_IMAGE, PERSON_IN_CROP
from tests.conftest import bearer
from tests.detection.helpers import SCENE, start_stream, wait_counters
from tests.detection.test_events import wait_events
from tests.vas_fixtures import add_device

pytestmark = pytest.mark.slow


def default_document() -> dict[str, Any]:
    """The effective settings of a camera when nothing was ever set, from core's defaults."""
    system = system_settings.DEFAULTS["detection"]
    return {"enabled": system["enabled"], **system["defaultSettings"],
            **copy.deepcopy(detection_settings.DEFAULTS)}


def person_template() -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The person as the scene draws it (grey, at its size on SCENE), and where the person
    stands inside it (left, top, right, bottom, in its pixels)."""
    photo = cv2.imread(str(PERSON_IMAGE), cv2.IMREAD_GRAYSCALE)
    assert photo is not None, f"{PERSON_IMAGE} is missing (scripts/install-test-deps.sh)"
    left, top, right, bottom = PERSON_CROP
    # tests/camera/server.py: 90 % of the frame high, the crop's aspect ratio, even sizes.
    height = int(SCENE.height * 0.9) // 2 * 2
    width = int(height * (right - left) / (bottom - top)) // 2 * 2
    template = cv2.resize(photo[top:bottom, left:right], (width, height),
                          interpolation=cv2.INTER_AREA)
    sx, sy = width / (right - left), height / (bottom - top)
    il, it, ir, ib = PERSON_IN_CROP
    return template, (round(il * sx), round(it * sy), round(ir * sx), round(ib * sy))


def person_in(jpeg: bytes) -> tuple[int, int, int, int]:
    """Where the person stands in a thumbnail (x0, y0, x1, y1), found by matching the
    scene's own picture of him, and checked against the scene's geometry: he walks
    along the middle of the frame, so only his x changes."""
    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert frame is not None and frame.shape == (SCENE.height, SCENE.width)
    template, (il, it, ir, ib) = person_template()
    scores = cv2.matchTemplate(frame, template, cv2.TM_CCOEFF_NORMED)
    _, best, _, (x, y) = cv2.minMaxLoc(scores)
    assert best > 0.7, f"the person is not in the thumbnail (match {best:.2f})"
    assert abs(y - (SCENE.height - template.shape[0]) // 2) <= 2, y
    return x + il, y + it, x + ir, y + ib


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def corners(obj: dict[str, Any]) -> tuple[int, int, int, int]:
    box = obj["boundingBox"]
    return box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]


async def test_a_person_walking_through_at_the_default_settings(
    client, admin_token, settings, media_node, worker, start_camera
):
    headers = bearer(admin_token)
    camera = start_camera(SCENE, scene="person", pattern="gradient")
    device = await add_device(client, camera.url)
    effective = await client.get(f"/api/v1/cameras/{device}/detection", headers=headers)
    assert effective.status_code == 200, effective.text
    assert effective.json() == {"cameraId": device, **default_document()}  # nothing set
    stream = await start_stream(client, device)
    events = EventService(settings.server.data_dir)

    # Still: sampled, no motion, nothing sent, no event (the person is there, not moving:
    # objects are looked for where something moved).
    still = await wait_counters(stream, lambda c: c["samples"] >= 5, seconds=40)
    assert (still["motion_samples"], still["jobs_sent"]) == (0, 0), still
    assert (await events.page(EventFilter(camera_id=uuid.UUID(device)), 1, 10))[1] == 0

    camera.set_motion(True)
    found: dict[str, EventRecord] = {}
    for _ in range(3):
        for event in await wait_events(events, device, len(found) + 1, seconds=60):
            found[event.type] = event
        if {"person", "motion"} <= set(found):
            break
    counters = await wait_counters(stream, lambda c: c["jobs_sent"] >= 1)
    assert set(found) == {"person", "motion"}, (found, counters)

    for event in found.values():
        assert event.thumbnail and (event.frame_width, event.frame_height) == (640, 360)
        assert str(event.stream_id) == stream and event.objects
    person, motion = found["person"], found["motion"]

    # The person event's box is where the person is in the frame it keeps (its thumbnail:
    # the frame of its boxes): on him, feet at his feet.
    thumb = await client.get(f"/api/v1/media/thumbnails/events/{person.id}", headers=headers)
    assert thumb.status_code == 200, thumb.text
    truth = person_in(thumb.content)
    detail = (await client.get(f"/api/v1/events/{person.id}", headers=headers)).json()
    [seen] = [obj for obj in detail["detectedObjects"] if iou(corners(obj), truth) > 0.4]
    assert seen["type"] == "person"
    assert seen["confidence"] >= default_document()["objectTypes"][0]["minConfidence"]
    x0, _, x1, y1 = corners(seen)
    assert truth[0] <= (x0 + x1) / 2 <= truth[2], (seen, truth)  # the bottom-centre rule
    assert abs(y1 - truth[3]) <= 0.1 * SCENE.height, (seen, truth)

    # The motion event's box holds the person in its own frame.
    thumb = await client.get(f"/api/v1/media/thumbnails/events/{motion.id}", headers=headers)
    truth = person_in(thumb.content)
    area = (truth[2] - truth[0]) * (truth[3] - truth[1])
    covered = max(
        max(0, min(b[2], truth[2]) - max(b[0], truth[0]))
        * max(0, min(b[3], truth[3]) - max(b[1], truth[1]))
        for b in map(corners, motion.objects))
    assert covered >= 0.5 * area, (motion.objects, truth)
