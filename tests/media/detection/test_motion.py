"""MotionDetector on frames the test paints: still, a moving block, and the settings."""

from __future__ import annotations

import pytest

from media.detection.boxes import Box
from media.detection.motion import MotionDetector, analysis_size, threshold_for
from media.detection.regions import Region
from tests.media.detection.scenes import background, with_block, with_noise

WIDTH, HEIGHT = 1280, 720  # camera frames; the analysis frame is 320x180 (scale 4)


def settle(detector: MotionDetector, frames: int = 4) -> list[list[Box]]:
    """Feed a few still frames (with sensor noise) so the background and calibration settle."""
    still = background(WIDTH, HEIGHT)
    return [detector.update(with_noise(still, seed)) for seed in range(frames)]


def moving_block_frames(x_positions: list[int], level: int = 235, y: int = 300) -> list:
    still = background(WIDTH, HEIGHT)
    return [
        with_noise(with_block(still, Box(x, y, 160, 160), level), seed=100 + i)
        for i, x in enumerate(x_positions)
    ]


def test_a_still_scene_has_no_motion() -> None:
    detector = MotionDetector(sensitivity=1.0, min_area=50)
    results = settle(detector, frames=20)
    assert results == [[]] * 20
    assert not detector.calibrating


def test_a_moving_block_is_boxed_where_it_moves() -> None:
    detector = MotionDetector(sensitivity=0.5, min_area=100)
    settle(detector)
    boxes: list[Box] = []
    for frame in moving_block_frames([800, 880, 960]):
        boxes = detector.update(frame)
    assert boxes, "the block moved: there must be motion"
    box = detector.to_frame(boxes[0])
    # The block is at x 960..1120, y 300..460 now (and was at 880 before): the box covers
    # it, in the right half of the picture, and nothing on the left.
    assert box.x >= 800 and box.right <= 1140, box
    assert 280 <= box.y <= 300 and 460 <= box.bottom <= 480, box
    assert all(detector.to_frame(b).x >= WIDTH // 2 for b in boxes)


def test_boxes_are_in_analysis_frame_pixels() -> None:
    detector = MotionDetector(analysis_width=320)
    settle(detector)
    for frame in moving_block_frames([200, 400]):
        boxes = detector.update(frame)
    assert detector.analysis_frame_size == (320, 180)
    assert detector.frame_size == (WIDTH, HEIGHT)
    assert boxes and boxes[0].right <= 320 and boxes[0].bottom <= 180
    assert detector.to_frame(boxes[0]) == boxes[0].scaled((320, 180), (WIDTH, HEIGHT))


def test_sensitivity_decides_whether_a_faint_change_counts() -> None:
    # A block 30 grey levels brighter than the scene around it: below the threshold at
    # sensitivity 0.5 (38), above it at 0.8 (20).
    assert threshold_for(0.5) == 38 and threshold_for(0.8) == 20
    results = {}
    for sensitivity in (0.5, 0.8):
        detector = MotionDetector(sensitivity=sensitivity, min_area=100)
        settle(detector)
        still = background(WIDTH, HEIGHT)
        faint = still.copy()
        region = faint[300:460, 800:960].astype(int) + 30
        faint[300:460, 800:960] = region.clip(0, 255).astype("uint8")
        results[sensitivity] = detector.update(with_noise(faint, seed=50))
    assert results[0.5] == []
    assert results[0.8], "a 30-level change counts at sensitivity 0.8"


def test_min_area_is_measured_on_the_analysis_frame() -> None:
    # A 40x40 block on the 1280x720 frame is 10x10 = 100 pixels of the 320x180 analysis
    # frame (somewhat more after dilation): counted at min_area 100, not at 400.
    outcome = {}
    for min_area in (100, 400):
        detector = MotionDetector(sensitivity=0.5, min_area=min_area)
        settle(detector)
        still = background(WIDTH, HEIGHT)
        outcome[min_area] = detector.update(with_noise(with_block(still, Box(900, 300, 40, 40)), 9))
    assert len(outcome[100]) == 1
    assert 100 <= outcome[100][0].area <= 400
    assert outcome[400] == []


def test_motion_outside_every_enabled_region_is_ignored() -> None:
    left_half = Region.from_coordinates([[0, 0], [0.5, 0], [0.5, 1], [0, 1]])
    right_half = Region.from_coordinates([[0.5, 0], [1, 0], [1, 1], [0.5, 1]], enabled=False)
    only_left = MotionDetector(min_area=100, regions=[left_half, right_half])
    anywhere = MotionDetector(min_area=100, regions=[right_half])  # none enabled: all counts
    for detector in (only_left, anywhere):
        settle(detector)
    frames = moving_block_frames([800, 900, 1000])  # right half only
    for frame in frames:
        left_result = only_left.update(frame)
        any_result = anywhere.update(frame)
    assert left_result == []
    assert any_result


def test_a_lighting_change_recalibrates_instead_of_reporting_motion() -> None:
    detector = MotionDetector(min_area=100)
    settle(detector)
    brighter = (background(WIDTH, HEIGHT).astype(int) + 80).clip(0, 255).astype("uint8")
    assert detector.update(brighter) == []
    assert detector.calibrating
    assert detector.update(with_noise(brighter, 1)) == []
    assert detector.update(with_noise(brighter, 2)) == []
    assert not detector.calibrating


def test_a_scene_moving_from_its_first_frame_still_gets_motion() -> None:
    # No calm frame ever (the block moves on every frame from the start): calibration ends
    # after four frames anyway, then the block is found where it is.
    detector = MotionDetector(sensitivity=0.5, min_area=100)
    xs = [200, 500, 800, 1000, 700, 400, 100, 400, 700]
    results = [detector.update(frame) for frame in moving_block_frames(xs)]
    assert results[:5] == [[]] * 5  # the background frame, then four calibration frames
    assert not detector.calibrating
    for x, boxes in zip(xs[5:], results[5:], strict=True):
        found = [detector.to_frame(box) for box in boxes]
        assert any(b.x <= x + 8 and b.right >= x + 152 and b.y <= 308 and b.bottom >= 452
                   for b in found), (x, found)


def test_grey_and_bgr_input_agree() -> None:
    import cv2

    bgr_detector, grey_detector = MotionDetector(), MotionDetector()
    frames = [with_noise(background(WIDTH, HEIGHT), s) for s in range(3)]
    frames += moving_block_frames([300, 400])
    for frame in frames:
        from_bgr = bgr_detector.update(frame)
        from_grey = grey_detector.update(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    assert from_bgr == from_grey and from_bgr


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_sensitivity_outside_0_1_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        MotionDetector(sensitivity=bad)


def test_analysis_size_keeps_the_aspect_ratio() -> None:
    assert analysis_size(1920, 1080, 320) == (320, 180)
    assert analysis_size(704, 576, 320) == (320, 262)
    assert analysis_size(160, 120, 320) == (160, 120)  # never upscaled
