"""Object detection: what a detector returns, the interface every backend implements, and
the factory that picks one.

Two backends, both offline:

- :class:`~media.detection.hog.HogPeopleDetector` (the default): OpenCV's built-in HOG +
  linear SVM people detector. Persons only; see ``docs/detection.md`` for its limits.
- :class:`~media.detection.onnx_model.OnnxDetector`: a YOLO-style ONNX model the operator
  supplies by path (``VAS_DETECTOR_MODEL``); COCO classes become person/vehicle/animal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt

from media.detection.boxes import Box

logger = logging.getLogger(__name__)

Label = Literal["person", "vehicle", "animal"]
LABELS: tuple[Label, ...] = get_args(Label)

BgrImage = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Detection:
    """One object: its label, a confidence in 0..1 and its box in pixels of the image given
    to :meth:`ObjectDetector.detect`."""

    label: Label
    confidence: float
    box: Box


class ObjectDetector(Protocol):
    """A backend: finds objects in one BGR image (H x W x 3, uint8).

    Instances are not thread-safe; a detection worker holds one per thread.
    """

    @property
    def labels(self) -> frozenset[Label]:
        """The labels this backend can report at all (HOG: only ``person``)."""

    def detect(self, bgr: BgrImage) -> list[Detection]:
        """The objects in ``bgr``, best first."""


def load_detector(model_path: str | None) -> ObjectDetector:
    """The ONNX backend for ``model_path`` (``VAS_DETECTOR_MODEL``), else the HOG default.

    Raises ``ModelError`` (from :mod:`media.detection.onnx_model`) when the model cannot be
    loaded or its layout is not supported: a configured model that does not work is an
    error, not a silent fall back to the weaker default.
    """
    if model_path:
        from media.detection.onnx_model import OnnxDetector

        return OnnxDetector(model_path)
    from media.detection.hog import HogPeopleDetector

    return HogPeopleDetector()


def accept(
    detections: Iterable[Detection],
    min_confidence: float,
    types: Mapping[str, tuple[bool, float | None]] | None = None,
) -> list[Detection]:
    """The detections the settings keep.

    ``min_confidence`` is the camera's threshold; ``types`` maps a label to
    ``(enabled, min_confidence)`` from ``objectTypes``: a listed type's own threshold
    replaces the camera's (None keeps the camera's), a disabled or unlisted type is dropped.
    Without ``types`` every label is kept at ``min_confidence``.
    """
    kept = []
    for detection in detections:
        threshold = min_confidence
        if types is not None:
            enabled, own = types.get(detection.label, (False, None))
            if not enabled:
                continue
            if own is not None:
                threshold = own
        if detection.confidence >= threshold:
            kept.append(detection)
    return kept


def non_max_suppression(
    boxes: Sequence[Box], scores: Sequence[float], iou_threshold: float
) -> list[int]:
    """Greedy NMS: indices of the boxes kept, best score first; a box is dropped when it
    overlaps a better kept one by more than ``iou_threshold`` (intersection over union)."""
    order = sorted(range(len(boxes)), key=lambda index: scores[index], reverse=True)
    kept: list[int] = []
    for index in order:
        if all(boxes[index].iou(boxes[other]) <= iou_threshold for other in kept):
            kept.append(index)
    return kept
