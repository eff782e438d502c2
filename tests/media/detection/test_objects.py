"""Boxes, the settings filter and NMS shared by the object detectors."""

from __future__ import annotations

import pytest

from media.detection.boxes import Box
from media.detection.objects import Detection, accept, non_max_suppression

PERSON = Detection("person", 0.75, Box(0, 0, 10, 20))
CAR = Detection("vehicle", 0.65, Box(20, 0, 30, 10))
DOG = Detection("animal", 0.9, Box(40, 40, 10, 10))


def test_camera_threshold_alone() -> None:
    assert accept([PERSON, CAR, DOG], 0.7) == [PERSON, DOG]


def test_object_types_enable_and_override_the_camera_threshold() -> None:
    types = {"person": (True, 0.8), "vehicle": (True, 0.6), "animal": (False, 0.1)}
    # person: its own 0.8 drops it; vehicle: its own 0.6 keeps it; animal: disabled.
    assert accept([PERSON, CAR, DOG], 0.7, types) == [CAR]
    # A type without its own threshold uses the camera's; an unlisted type is dropped.
    assert accept([PERSON, CAR, DOG], 0.7, {"person": (True, None)}) == [PERSON]


def test_non_max_suppression_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = [Box(0, 0, 10, 10), Box(1, 1, 10, 10), Box(50, 50, 10, 10), Box(0, 0, 10, 10)]
    scores = [0.6, 0.9, 0.5, 0.3]
    assert non_max_suppression(boxes, scores, 0.45) == [1, 2]
    assert non_max_suppression(boxes, scores, 0.99) == [1, 0, 2]


def test_box_geometry() -> None:
    box = Box(10, 20, 30, 40)
    assert (box.right, box.bottom, box.area) == (40, 60, 1200)
    assert box.bottom_centre == (25.0, 60.0)
    assert box.scaled((320, 180), (1920, 1080)) == Box(60, 120, 180, 240)
    assert Box(-5, -5, 20, 20).clipped(10, 10) == Box(0, 0, 10, 10)
    assert Box(20, 20, 5, 5).clipped(10, 10).area == 0
    assert box.iou(box) == 1.0 and box.iou(Box(100, 100, 5, 5)) == 0.0
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    with pytest.raises(ValueError, match="negative"):
        Box(0, 0, -1, 5)
