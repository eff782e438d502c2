"""The ONNX backend, run for real by onnxruntime on models this test builds with onnx.helper.

Each model ignores what a real network would compute and outputs fixed candidate boxes,
except one candidate (a dog) whose score is the mean of the input's *red* channel: the
detector must hand the model RGB values in 0..1, letterboxed with grey 114, for that score
to come out as computed here. Loading, pre-processing, the output layouts, the letterbox
undo, NMS and the COCO class mapping are all exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from media.detection.boxes import Box
from media.detection.objects import load_detector
from media.detection.onnx_model import COCO_CLASSES, ModelError, OnnxDetector, letterbox

INPUT = 320  # model input: 320x320
IMAGE_W, IMAGE_H = 640, 480  # letterboxed at scale 0.5, 40 px of padding above and below
PAD_TOP = 40

# (cx, cy, w, h) in model input pixels, COCO class, fixed score (None: the red mean).
CANDIDATES: list[tuple[tuple[float, float, float, float], str, float | None]] = [
    ((160, 160, 40, 100), "person", 0.9),
    ((164, 162, 40, 100), "person", 0.8),  # the same person again: NMS drops it
    ((80, 200, 60, 30), "car", 0.7),
    ((82, 201, 60, 30), "truck", 0.6),  # same vehicle, other class: one vehicle
    ((250, 250, 30, 30), "dog", None),  # score = mean of the red channel
    ((250, 100, 30, 60), "chair", 0.95),  # not a person, vehicle or animal: ignored
    ((40, 80, 20, 40), "person", 0.1),  # below the score threshold
]
RED_MEAN_OF_RED_IMAGE = (240 * 1.0 + 80 * 114 / 255) / 320  # image rows + padding rows


def image_box(cx: float, cy: float, w: float, h: float) -> Box:
    """Where a model-input box lands on the 640x480 image (undo scale 0.5 and the pad)."""
    x0, y0 = (cx - w / 2) / 0.5, (cy - h / 2 - PAD_TOP) / 0.5
    return Box(round(x0), round(y0), round(w / 0.5), round(h / 0.5))


def candidate_rows(classes: list[str], objectness: bool) -> tuple[np.ndarray, np.ndarray]:
    """Fixed values and the mask of entries scaled by the red mean, [N, values]."""
    width = 4 + int(objectness) + len(classes)
    base = np.zeros((len(CANDIDATES), width), np.float32)
    red = np.zeros_like(base)
    first_class = 5 if objectness else 4
    for row, ((cx, cy, w, h), name, score) in enumerate(CANDIDATES):
        base[row, :4] = (cx, cy, w, h)
        if objectness:
            base[row, 4] = 1.0
        column = first_class + classes.index(name)
        if score is None:
            red[row, column] = 1.0
        else:
            base[row, column] = score
    return base, red


def build_model(path: Path, base: np.ndarray, red: np.ndarray, names: str | None = None) -> Path:
    """output = base + mean(red channel of the input) * red, shaped [1, ...] like base."""
    base, red = base[np.newaxis], red[np.newaxis]
    nodes = [
        helper.make_node("Gather", ["images", "channel0"], ["red_plane"], axis=1),
        helper.make_node("ReduceMean", ["red_plane"], ["red_mean"], axes=[1, 2], keepdims=1),
        helper.make_node("Mul", ["red_mean", "red_mask"], ["scaled"]),
        helper.make_node("Add", ["base", "scaled"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fixed_boxes",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, INPUT, INPUT])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(base.shape))],
        initializer=[
            numpy_helper.from_array(np.array(0, np.int64), "channel0"),
            numpy_helper.from_array(base.astype(np.float32), "base"),
            numpy_helper.from_array(red.astype(np.float32), "red_mask"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if names is not None:
        helper.set_model_props(model, {"names": names})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def red_image() -> np.ndarray:
    image = np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8)
    image[:, :, 2] = 255  # BGR: red
    return image


def assert_expected(detections: list, dog_confidence: float | None) -> None:
    by_label = {d.label: d for d in detections}
    expected = {"person", "vehicle"} | ({"animal"} if dog_confidence is not None else set())
    assert [d.label for d in detections].count("person") == 1
    assert [d.label for d in detections].count("vehicle") == 1
    assert set(by_label) == expected
    assert by_label["person"].confidence == pytest.approx(0.9)
    assert by_label["person"].box == image_box(160, 160, 40, 100) == Box(280, 140, 80, 200)
    assert by_label["vehicle"].confidence == pytest.approx(0.7)
    assert by_label["vehicle"].box == image_box(80, 200, 60, 30)
    if dog_confidence is not None:
        assert by_label["animal"].confidence == pytest.approx(dog_confidence, abs=1e-3)
        assert by_label["animal"].box == image_box(250, 250, 30, 30)
    assert detections == sorted(detections, key=lambda d: d.confidence, reverse=True)


def test_yolov8_layout_with_coco_classes(tmp_path: Path) -> None:
    base, red = candidate_rows(list(COCO_CLASSES), objectness=False)
    path = build_model(tmp_path / "v8.onnx", base.T, red.T)  # [1, 84, N]
    detector = load_detector(str(path))
    assert isinstance(detector, OnnxDetector)
    assert detector.input_size == (INPUT, INPUT)
    assert detector.labels == frozenset({"person", "vehicle", "animal"})

    assert_expected(detector.detect(red_image()), RED_MEAN_OF_RED_IMAGE)
    # A blue picture: the red channel is 0 inside the image, only the grey padding has red,
    # so the dog's score (0.11) falls under the threshold.
    blue = np.zeros((IMAGE_H, IMAGE_W, 3), np.uint8)
    blue[:, :, 0] = 255
    assert_expected(detector.detect(blue), None)


def test_yolov5_layout_multiplies_objectness(tmp_path: Path) -> None:
    base, red = candidate_rows(list(COCO_CLASSES), objectness=True)
    base[0, 4] = 0.5  # the first person's objectness halves its score: now the duplicate wins
    path = build_model(tmp_path / "v5.onnx", base, red)  # [1, N, 85]
    detections = OnnxDetector(path).detect(red_image())
    people = [d for d in detections if d.label == "person"]
    assert len(people) == 1
    assert people[0].confidence == pytest.approx(0.8)
    assert people[0].box == image_box(164, 162, 40, 100)


def test_class_names_from_model_metadata(tmp_path: Path) -> None:
    classes = ["person", "car", "truck", "dog", "chair"]
    base, red = candidate_rows(classes, objectness=False)
    names = repr(dict(enumerate(classes)))  # as Ultralytics writes it
    path = build_model(tmp_path / "custom.onnx", base.T, red.T, names=names)
    detector = OnnxDetector(path)
    assert detector.class_names == classes
    assert_expected(detector.detect(red_image()), RED_MEAN_OF_RED_IMAGE)


def test_end2end_layout(tmp_path: Path) -> None:
    rows = np.array(
        [[140, 110, 180, 210, 0.9, 0], [50, 185, 110, 215, 0.7, 2], [0, 0, 10, 10, 0.9, 56]],
        np.float32,
    )
    path = build_model(tmp_path / "e2e.onnx", rows, np.zeros_like(rows))
    detections = OnnxDetector(path, layout="end2end").detect(red_image())
    assert [(d.label, d.box) for d in detections] == [
        ("person", Box(280, 140, 80, 200)),
        ("vehicle", image_box(80, 200, 60, 30)),
    ]


def test_letterbox_geometry() -> None:
    tensor, scale, pad = letterbox(red_image(), (INPUT, INPUT))
    assert tensor.shape == (1, 3, INPUT, INPUT) and tensor.dtype == np.float32
    assert scale == 0.5 and pad == (0.0, 40.0)
    assert tensor[0, 0, 100, 100] == pytest.approx(1.0)  # red, RGB order, 0..1
    assert tensor[0, 2, 100, 100] == pytest.approx(0.0)
    assert tensor[0, 1, 10, 100] == pytest.approx(114 / 255)  # padding


def test_unloadable_models_are_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load"):
        load_detector(str(garbage))
    with pytest.raises(ModelError, match="cannot load"):
        OnnxDetector(tmp_path / "missing.onnx")
    odd_rows = np.zeros((7, 6), np.float32)  # 6 values per row: not 84/85 for 80 classes
    odd = build_model(tmp_path / "odd.onnx", odd_rows, odd_rows)
    with pytest.raises(ModelError, match="layout"):
        OnnxDetector(odd).detect(red_image())
