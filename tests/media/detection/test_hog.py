"""The default detector (OpenCV's HOG people detector) on the chosen person photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from media.detection.boxes import Box
from media.detection.hog import HogPeopleDetector, confidence_from_weight
from media.detection.objects import load_detector
from tests.camera import PERSON_IMAGE
from tests.media.detection.scenes import background, with_block, with_person


@pytest.fixture(scope="module")
def detector() -> HogPeopleDetector:
    return HogPeopleDetector()


def test_the_default_detector_is_hog_and_finds_persons_only() -> None:
    default = load_detector(None)
    assert isinstance(default, HogPeopleDetector)
    assert default.labels == frozenset({"person"})


def test_finds_the_player_in_the_sample_photo(detector: HogPeopleDetector) -> None:
    photo = cv2.imread(str(PERSON_IMAGE))
    assert photo is not None, f"{PERSON_IMAGE} missing: run scripts/install-test-deps.sh"
    detections = detector.detect(photo)
    # The player on the left (x 35..165, head at y 80, feet at the bottom edge).
    best = detections[0]
    assert best.label == "person" and best.confidence > 0.8
    assert best.box.x < 60 and best.box.right > 140
    assert best.box.y < 100 and best.box.bottom > 400


@pytest.mark.parametrize("x", [20, 250, 480])
@pytest.mark.parametrize("height", [200, 280])
def test_finds_the_person_crossing_a_background(
    detector: HogPeopleDetector, x: int, height: int
) -> None:
    scene, person = with_person(background(640, 360), x, 30, height)
    detections = detector.detect(scene)
    assert len(detections) == 1
    found = detections[0]
    assert found.label == "person" and found.confidence >= 0.5
    assert found.box.iou(person) > 0.6, (found.box, person)
    # The bottom of the box is at the feet (the region rule uses it).
    assert abs(found.box.bottom - person.bottom) <= 0.1 * person.height


def test_finds_the_person_in_a_larger_frame_by_downscaling_first(
    detector: HogPeopleDetector,
) -> None:
    small, person = with_person(background(640, 360), 300, 30, 250)
    large = cv2.resize(small, (1280, 720), interpolation=cv2.INTER_LINEAR)
    detections = detector.detect(large)
    assert len(detections) == 1
    assert detections[0].box.iou(person.scaled((640, 360), (1280, 720))) > 0.6


def test_nothing_in_a_scene_without_a_person(detector: HogPeopleDetector) -> None:
    still = background(640, 360)
    assert detector.detect(still) == []
    assert detector.detect(with_block(still, Box(400, 100, 80, 160))) == []
    assert detector.detect(np.zeros((360, 640, 3), np.uint8)) == []


def test_a_person_too_small_for_the_window_is_not_found(detector: HogPeopleDetector) -> None:
    # About 80 px tall: below the ~100 px the 64x128 window needs.
    scene, _ = with_person(background(640, 360), 300, 100, 90)
    assert detector.detect(scene) == []


def test_an_image_lower_than_the_window_gives_nothing_instead_of_crashing(
    detector: HogPeopleDetector,
) -> None:
    # OpenCV 4.x dies of SIGSEGV on such an image; the detector must not pass it on.
    assert detector.detect(np.full((84, 640, 3), 128, np.uint8)) == []
    assert detector.detect(np.full((360, 40, 3), 128, np.uint8)) == []


def test_confidence_mapping() -> None:
    assert confidence_from_weight(-1.0) == 0.0
    assert confidence_from_weight(1.0) == pytest.approx(0.632, abs=1e-3)
    assert confidence_from_weight(1.2) == pytest.approx(0.70, abs=1e-2)
    assert confidence_from_weight(3.0) == pytest.approx(0.95, abs=1e-2)
