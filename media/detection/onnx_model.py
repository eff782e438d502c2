"""The ONNX backend: a YOLO-style detection model supplied by the operator.

Input: one tensor ``[1, 3, H, W]`` float32, RGB, values 0..1, NCHW; H and W come from the
model (640 when they are dynamic). The image is letterboxed into it: scaled to fit with its
aspect ratio kept, centred, and the border filled with grey 114 (as YOLO training does).

Outputs supported (the first output of the model; batch 1):

- ``yolov8`` — ``[1, 4 + C, N]`` (YOLOv8/v9/v11 exports): per candidate ``cx, cy, w, h``
  in input pixels, then C class scores (already 0..1). No objectness.
- ``yolov5`` — ``[1, N, 5 + C]`` (YOLOv5/v7 exports): ``cx, cy, w, h, objectness``, then C
  class scores; a candidate's score is objectness x class score.
- ``end2end`` — ``[1, N, 6]`` (exports with NMS inside, e.g. YOLOv10): ``x1, y1, x2, y2,
  score, class_id``.

``layout="auto"`` tells yolov8 from yolov5 for COCO models (84 vs 85 values per candidate)
and accepts either orientation of the two last axes. Class names come from the model's
``names`` metadata (as Ultralytics writes it) when present, else the 80 COCO classes in
their usual order; :data:`COCO_TO_LABEL` maps them to person/vehicle/animal, and every other
class is ignored. NMS runs per label after the mapping (a box called both car and truck
is one vehicle).
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from media.detection.boxes import Box
from media.detection.objects import BgrImage, Detection, Label, non_max_suppression

logger = logging.getLogger(__name__)

Layout = Literal["auto", "yolov8", "yolov5", "end2end"]

COCO_CLASSES: tuple[str, ...] = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
)

COCO_TO_LABEL: dict[str, Label] = {
    "person": "person",
    **{
        name: "vehicle"
        for name in ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat")
    },
    **{
        name: "animal"
        for name in (
            "bird",
            "cat",
            "dog",
            "horse",
            "sheep",
            "cow",
            "elephant",
            "bear",
            "zebra",
            "giraffe",
        )
    },
}

LETTERBOX_FILL = 114
DEFAULT_INPUT_SIZE = 640


class ModelError(RuntimeError):
    """The ONNX model cannot be loaded, or its inputs or outputs are not a supported layout."""


class OnnxDetector:
    """Runs a YOLO-style ONNX model with onnxruntime on the CPU (see the module docstring).

    ``score_threshold``: candidates below it are dropped before NMS (keep it at or below
    the lowest ``minConfidence`` in use). ``threads``: onnxruntime intra-op threads.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        layout: Layout = "auto",
        score_threshold: float = 0.25,
        nms_iou: float = 0.45,
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own unexported exception types
            raise ModelError(f"cannot load {self.path}: {exc}") from exc
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(f"{self.path}: expected one NCHW image input, got {inputs}")
        self._input_name = inputs[0].name
        _, channels, height, width = inputs[0].shape
        if isinstance(channels, int) and channels != 3:
            raise ModelError(f"{self.path}: expected 3 input channels, got {channels}")
        self.input_size = (
            width if isinstance(width, int) and width > 0 else DEFAULT_INPUT_SIZE,
            height if isinstance(height, int) and height > 0 else DEFAULT_INPUT_SIZE,
        )
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.class_names = _class_names(metadata.get("names"))
        self.layout = layout
        logger.info(
            "ONNX detector %s: input %dx%d, %d classes, layout %s",
            self.path,
            *self.input_size,
            len(self.class_names),
            layout,
        )

    @property
    def labels(self) -> frozenset[Label]:
        """The labels the model's classes map to."""
        return frozenset(COCO_TO_LABEL[name] for name in self.class_names if name in COCO_TO_LABEL)

    def detect(self, bgr: BgrImage) -> list[Detection]:
        """Objects in ``bgr``, best first, boxes in its pixels."""
        tensor, scale, pad = letterbox(bgr, self.input_size)
        (output, *_) = self._session.run(None, {self._input_name: tensor})
        boxes, scores, classes = self._decode(np.asarray(output, np.float32))
        height, width = bgr.shape[:2]
        candidates: list[tuple[Label, float, Box]] = []
        for (x1, y1, x2, y2), score, class_id in zip(boxes, scores, classes, strict=True):
            name = self.class_names[class_id] if 0 <= class_id < len(self.class_names) else ""
            label = COCO_TO_LABEL.get(name)
            if label is None or score < self.score_threshold:
                continue
            # Undo the letterbox: input pixels -> image pixels.
            left, top = (x1 - pad[0]) / scale, (y1 - pad[1]) / scale
            right, bottom = (x2 - pad[0]) / scale, (y2 - pad[1]) / scale
            box = Box(round(left), round(top), round(right - left), round(bottom - top))
            box = box.clipped(width, height)
            if box.area > 0:
                candidates.append((label, float(score), box))
        detections: list[Detection] = []
        for label in sorted({candidate[0] for candidate in candidates}):
            group = [candidate for candidate in candidates if candidate[0] == label]
            kept = non_max_suppression([c[2] for c in group], [c[1] for c in group], self.nms_iou)
            detections += [Detection(label, group[i][1], group[i][2]) for i in kept]
        return sorted(detections, key=lambda detection: detection.confidence, reverse=True)

    def _decode(
        self, output: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Corner boxes (x1, y1, x2, y2 in input pixels), scores and class ids."""
        if output.ndim == 3:
            if output.shape[0] != 1:
                raise ModelError(f"expected batch 1, got output {output.shape}")
            output = output[0]
        if output.ndim != 2:
            raise ModelError(f"unsupported output shape {output.shape}")
        layout = self._resolve_layout(output.shape)
        if layout == "end2end":
            rows = output if output.shape[1] == 6 else output.T
            return rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)
        classes = len(self.class_names)
        values = 4 + classes + (1 if layout == "yolov5" else 0)
        rows = output if output.shape[1] == values else output.T
        if rows.shape[1] != values:
            raise ModelError(
                f"output {output.shape} does not hold {values} values per candidate "
                f"({layout} with {classes} classes)"
            )
        class_scores = rows[:, 4:] if layout == "yolov8" else rows[:, 5:] * rows[:, 4:5]
        class_ids = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(len(rows)), class_ids]
        cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        return corners.astype(np.float32), scores.astype(np.float32), class_ids.astype(np.int64)

    def _resolve_layout(self, shape: tuple[int, ...]) -> Layout:
        if self.layout != "auto":
            return self.layout
        classes = len(self.class_names)
        if 4 + classes in shape:
            return "yolov8"
        if 5 + classes in shape:
            return "yolov5"
        raise ModelError(
            f"cannot tell the layout of output {shape} for {classes} classes: "
            "pass layout='yolov8', 'yolov5' or 'end2end'"
        )


def letterbox(
    bgr: BgrImage, size: tuple[int, int]
) -> tuple[npt.NDArray[np.float32], float, tuple[float, float]]:
    """The NCHW RGB 0..1 input tensor for ``bgr`` fitted into ``size`` (w, h), the scale
    applied and the (left, top) padding in input pixels."""
    height, width = bgr.shape[:2]
    target_w, target_h = size
    scale = min(target_w / width, target_h / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    resized = cv2.resize(bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    left, top = (target_w - new_w) // 2, (target_h - new_h) // 2
    canvas = np.full((target_h, target_w, 3), LETTERBOX_FILL, np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
    tensor = rgb.transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0
    return np.ascontiguousarray(tensor), scale, (float(left), float(top))


def _class_names(names: str | None) -> Sequence[str]:
    """Class names from the ``names`` metadata (``{0: 'person', ...}``), else COCO's 80."""
    if not names:
        return COCO_CLASSES
    try:
        parsed = ast.literal_eval(names)
    except (ValueError, SyntaxError) as exc:
        raise ModelError(f"unreadable 'names' metadata: {names[:80]!r}") from exc
    if isinstance(parsed, dict):
        return [str(parsed[index]) for index in sorted(parsed)]
    if isinstance(parsed, list):
        return [str(name) for name in parsed]
    raise ModelError(f"unexpected 'names' metadata: {names[:80]!r}")
