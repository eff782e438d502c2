"""The default detector: OpenCV's HOG people detector (Dalal-Triggs, trained on INRIA).

It ships inside ``opencv-python-headless`` 4.x (5.x dropped it), so it works offline with
no model file. It finds **upright, whole people** that are at least about 100 pixels tall
in the image it is given, seen roughly from the side or the front; nothing else. The
parameters below were chosen by experiment (``docs/detection.md``).
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from media.detection.boxes import Box
from media.detection.objects import BgrImage, Detection, Label, non_max_suppression

logger = logging.getLogger(__name__)

# The SVM's detection window; an image smaller than this (after padding) has no window to
# score, and OpenCV 4.x crashes (SIGSEGV) on it instead of raising.
WINDOW_WIDTH = 64
WINDOW_HEIGHT = 128
# Inside the 64x128 window the person fills about the middle 60 % of the width and 80 % of
# the height (the training crops had margins): boxes are shrunk to that, so the bottom edge
# is at the feet, which the region rule (bottom-centre) depends on.
_PERSON_X_MARGIN = 0.2
_PERSON_Y_MARGIN = 0.1


def confidence_from_weight(weight: float) -> float:
    """Map the SVM margin (HOG's ``weight``, unbounded) to 0..1: ``1 - exp(-weight)``.

    0.3 -> 0.26, 0.5 -> 0.39, 1.0 -> 0.63, 1.2 -> 0.70, 1.5 -> 0.78, 2.0 -> 0.86, 3.0 -> 0.95.
    Whole people in the test images score 1 to 3.5; textured non-people up to 1.7.
    """
    return 1.0 - math.exp(-max(weight, 0.0))


class HogPeopleDetector:
    """People only, from OpenCV's built-in HOG + linear SVM.

    ``max_width``: wider images are downscaled to it first (cost grows with the pixel
    count: about 40 ms at 640x360 on one core of the project's machine). ``hit_threshold``:
    SVM margin below which a window is not reported at all.
    """

    def __init__(
        self,
        *,
        win_stride: tuple[int, int] = (8, 8),
        padding: tuple[int, int] = (8, 8),
        scale: float = 1.05,
        hit_threshold: float = 0.3,
        max_width: int = 640,
        nms_iou: float = 0.45,
    ) -> None:
        self.win_stride = win_stride
        self.padding = padding
        self.scale = scale
        self.hit_threshold = hit_threshold
        self.max_width = max_width
        self.nms_iou = nms_iou
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(
            np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32)
        )

    @property
    def labels(self) -> frozenset[Label]:
        """HOG finds persons only."""
        return frozenset({"person"})

    def detect(self, bgr: BgrImage) -> list[Detection]:
        """Upright people in ``bgr``, best first."""
        height, width = bgr.shape[:2]
        image = bgr
        if width > self.max_width:
            image = np.asarray(
                cv2.resize(
                    bgr,
                    (self.max_width, round(height * self.max_width / width)),
                    interpolation=cv2.INTER_AREA,
                ),
                np.uint8,
            )
        small_height, small_width = image.shape[:2]
        if (
            small_height + 2 * self.padding[1] < WINDOW_HEIGHT + 8
            or small_width + 2 * self.padding[0] < WINDOW_WIDTH + 8
        ):
            return []  # no room for one window: see WINDOW_WIDTH
        rects, weights = self._hog.detectMultiScale(
            image,
            hitThreshold=self.hit_threshold,
            winStride=self.win_stride,
            padding=self.padding,
            scale=self.scale,
        )
        boxes: list[Box] = []
        scores: list[float] = []
        margins = np.asarray(weights, np.float64).reshape(-1)
        for (x, y, w, h), weight in zip(rects, margins, strict=True):
            inner = Box(
                int(x + w * _PERSON_X_MARGIN),
                int(y + h * _PERSON_Y_MARGIN),
                round(w * (1 - 2 * _PERSON_X_MARGIN)),
                round(h * (1 - 2 * _PERSON_Y_MARGIN)),
            )
            boxes.append(
                inner.scaled((small_width, small_height), (width, height)).clipped(width, height)
            )
            scores.append(float(weight))
        return [
            Detection("person", confidence_from_weight(scores[index]), boxes[index])
            for index in non_max_suppression(boxes, scores, self.nms_iou)
        ]
