"""Motion detection: a running background, frame differencing, threshold, dilate, contours.

The way well-known NVRs do it (Frigate's and Viseron's detectors work alike): every frame is
made grey and small, blurred a little, compared with a running average of the previous
frames, and the pixels that differ by more than a threshold are grown into blobs whose
outlines (contours) become motion boxes. Everything runs on the *analysis frame*, a
downscaled grey copy ``analysis_width`` pixels wide, so the cost hardly depends on the
camera's resolution.

The detector is stateful (the background) and not thread-safe: one per camera, fed in
order. It expects frames at the detection interval (typically 0.5 to 2 s apart), which is
why the background adapts quickly (``background_alpha``) compared with detectors fed every
frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from media.detection.boxes import Box
from media.detection.regions import Region, region_mask

logger = logging.getLogger(__name__)

DEFAULT_ANALYSIS_WIDTH = 320

# Pixel difference threshold (grey levels, 0..255) at sensitivity 0 and at sensitivity 1;
# linear in between (see threshold_for).
THRESHOLD_AT_SENSITIVITY_0 = 68
THRESHOLD_AT_SENSITIVITY_1 = 8

# Calibration ends at the first frame in which less than this share of the picture changed,
# or after this many calibration frames, whichever comes first: a scene that moves from its
# first frame on (a busy street, a person walking when the stream starts) has no calm frame,
# and after four frames at alpha 0.5 the background is 94 % the scene's own.
_CALM_SHARE = 0.05
_MAX_CALIBRATION_FRAMES = 4
# A frame in which more than this share changed is a lighting change (lights on, IR mode,
# a camera moved), not motion: the background is taken over and the detector recalibrates.
_LIGHTING_SHARE = 0.6
_CALIBRATION_ALPHA = 0.5

GreyImage = npt.NDArray[np.uint8]


def threshold_for(sensitivity: float) -> int:
    """The grey-level difference a pixel needs to count as changed, for ``sensitivity``.

    Linear from 68 at sensitivity 0 (only stark changes) to 8 at sensitivity 1 (barely
    visible ones): 38 at the default 0.5, 32 at 0.6, 26 at 0.7.
    """
    if not 0 <= sensitivity <= 1:
        raise ValueError(f"sensitivity {sensitivity} is outside 0..1")
    span = THRESHOLD_AT_SENSITIVITY_0 - THRESHOLD_AT_SENSITIVITY_1
    return round(THRESHOLD_AT_SENSITIVITY_0 - span * sensitivity)


def analysis_size(width: int, height: int, analysis_width: int) -> tuple[int, int]:
    """(w, h) of the analysis frame for a ``width`` x ``height`` input (aspect kept, even h)."""
    if width <= analysis_width:
        return width, height
    scaled_height = max(2, round(height * analysis_width / width / 2) * 2)
    return analysis_width, scaled_height


class MotionDetector:
    """Finds moving areas in a sequence of frames of one camera.

    ``sensitivity`` (0..1) sets the grey-level threshold (:func:`threshold_for`);
    ``min_area`` is the smallest blob, in pixels **of the analysis frame**
    (``analysis_width`` wide, 320 by default: 320x180 for 16:9), that counts as motion;
    ``regions`` (optional) restrict motion to the enabled regions: changed pixels outside
    them are ignored before blobs are measured (see :mod:`media.detection.regions`).

    The first frame starts the background and reports nothing; the detector then stays
    *calibrating* (reporting nothing) until a frame in which less than 5 % of the picture
    changed, or for four frames at most (a scene moving from the start has no calm frame),
    and goes back to calibrating when more than 60 % changes at once.
    """

    def __init__(
        self,
        sensitivity: float = 0.5,
        min_area: int = 500,
        analysis_width: int = DEFAULT_ANALYSIS_WIDTH,
        *,
        background_alpha: float = 0.2,
        regions: Sequence[Region] = (),
    ) -> None:
        if min_area < 0:
            raise ValueError(f"min_area {min_area} is negative")
        if analysis_width < 16:
            raise ValueError(f"analysis_width {analysis_width} is too small")
        if not 0 < background_alpha <= 1:
            raise ValueError(f"background_alpha {background_alpha} is outside (0, 1]")
        self.threshold = threshold_for(sensitivity)
        self.sensitivity = sensitivity
        self.min_area = min_area
        self.analysis_width = analysis_width
        self.background_alpha = background_alpha
        self._regions = tuple(regions)
        self._mask: GreyImage | None = None
        self._background: npt.NDArray[np.float32] | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
        self.calibrating = True
        self._calibration_frames = 0
        self.frame_size: tuple[int, int] | None = None  # (w, h) of the input frames
        self.analysis_frame_size: tuple[int, int] | None = None  # (w, h) analysed

    def reset(self) -> None:
        """Forget the background (after a gap in the stream or a new source)."""
        self._background = None
        self.calibrating, self._calibration_frames = True, 0

    def update(self, frame: npt.NDArray[np.uint8]) -> list[Box]:
        """Feed the next frame (grey HxW or BGR HxWx3, any size); return the motion boxes,
        in pixels of the analysis frame (see :meth:`to_frame`)."""
        grey = self._prepare(frame)
        if self._background is None or self._background.shape != grey.shape:
            self._background = grey.astype(np.float32)
            self.calibrating, self._calibration_frames = True, 0
            return []
        delta = cv2.absdiff(grey, cv2.convertScaleAbs(self._background))
        _, changed = cv2.threshold(delta, self.threshold, 255, cv2.THRESH_BINARY)
        if self._mask is not None:
            changed = cv2.bitwise_and(changed, self._mask)
        changed = cv2.dilate(changed, self._kernel, iterations=2)
        share = cv2.countNonZero(changed) / changed.size

        if share > _LIGHTING_SHARE:
            # The whole picture changed: start again from this frame.
            self._background = grey.astype(np.float32)
            self.calibrating, self._calibration_frames = True, 0
            return []
        if self.calibrating:
            cv2.accumulateWeighted(grey, self._background, _CALIBRATION_ALPHA)
            self._calibration_frames += 1
            if share < _CALM_SHARE or self._calibration_frames >= _MAX_CALIBRATION_FRAMES:
                self.calibrating = False
            return []

        contours, _ = cv2.findContours(changed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = [
            Box(*(int(v) for v in cv2.boundingRect(contour)))
            for contour in contours
            if cv2.contourArea(contour) >= self.min_area
        ]
        # The background follows the scene: what stops moving (a parked car) is absorbed in
        # a few intervals (the change decays by 1 - alpha per frame).
        cv2.accumulateWeighted(grey, self._background, self.background_alpha)
        return sorted(boxes, key=lambda box: box.area, reverse=True)

    def to_frame(self, box: Box) -> Box:
        """A box from :meth:`update`, in pixels of the input frames."""
        if self.frame_size is None or self.analysis_frame_size is None:
            raise RuntimeError("no frame analysed yet")
        return box.scaled(self.analysis_frame_size, self.frame_size)

    def _prepare(self, frame: npt.NDArray[np.uint8]) -> GreyImage:
        if frame.ndim == 3:
            grey: GreyImage = np.asarray(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), np.uint8)
        elif frame.ndim == 2:
            grey = frame
        else:
            raise ValueError(f"expected a grey or BGR image, got shape {frame.shape}")
        height, width = grey.shape
        self.frame_size = (width, height)
        size = analysis_size(width, height, self.analysis_width)
        if self.analysis_frame_size != size:
            self.analysis_frame_size = size
            self._mask = region_mask(self._regions, *size)
        if size != (width, height):
            grey = np.asarray(cv2.resize(grey, size, interpolation=cv2.INTER_AREA), np.uint8)
        # A light blur: encoder noise and single-pixel flicker are not motion.
        return np.asarray(cv2.GaussianBlur(grey, (5, 5), 0), np.uint8)
