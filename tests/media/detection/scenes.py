"""Pictures and clips the detection tests make themselves (nothing is downloaded).

Backgrounds are smooth random textures (like a wall or a lawn, with nothing in them HOG
could take for a person); the person is the crop of OpenCV's sample photo named in
``tests.camera.PERSON_IMAGE``.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt

from media.detection.boxes import Box
from tests.camera import PERSON_CROP, PERSON_IMAGE, PERSON_IN_CROP

Image = npt.NDArray[np.uint8]


def background(width: int, height: int, seed: int = 0) -> Image:
    """A still, smoothly textured grey-green BGR scene."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(70, 170, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(image, np.uint8)


def with_noise(image: Image, seed: int, amplitude: int = 3) -> Image:
    """``image`` with a camera's sensor noise (uniform, +-amplitude grey levels)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-amplitude, amplitude + 1, image.shape, dtype=np.int16)
    return np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def with_block(image: Image, box: Box, level: int = 235) -> Image:
    """``image`` with a flat block painted over ``box``."""
    out = image.copy()
    out[box.y : box.bottom, box.x : box.right] = level
    return out


def person_patch(height: int) -> tuple[Image, Box]:
    """The person photo crop scaled to ``height`` pixels, and where the person is in it."""
    photo = cv2.imread(str(PERSON_IMAGE))
    if photo is None:
        raise FileNotFoundError(
            f"{PERSON_IMAGE} is missing: run scripts/install-test-deps.sh (Debian opencv-doc)"
        )
    left, top, right, bottom = PERSON_CROP
    crop = photo[top:bottom, left:right]
    scale = height / crop.shape[0]
    width = round(crop.shape[1] * scale)
    patch = np.asarray(cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA), np.uint8)
    px0, py0, px1, py1 = (round(v * scale) for v in PERSON_IN_CROP)
    return patch, Box(px0, py0, px1 - px0, py1 - py0)


def with_person(image: Image, x: int, y: int, height: int) -> tuple[Image, Box]:
    """``image`` with the person patch pasted at (x, y); returns it and the person's box."""
    patch, person = person_patch(height)
    out = image.copy()
    h, w = patch.shape[:2]
    out[y : y + h, x : x + w] = patch[: out.shape[0] - y, : out.shape[1] - x]
    return out, Box(x + person.x, y + person.y, person.width, person.height)


def write_clip(
    path: Path, frames: list[Image], fps: int, gop: int, bitrate: int = 1_000_000
) -> None:
    """Encode BGR ``frames`` to H.264 in MPEG-TS the way a camera's RTSP ingest hands them
    on: Annex B, SPS/PPS repeated on every keyframe, no B-frames, fixed GOP."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bitrate
        stream.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "0",
            "x264-params": "repeat-headers=1",
        }
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def video_packets(path: Path) -> list[av.Packet]:
    """The video packets of a file, in decode order (demuxed, not decoded)."""
    with av.open(str(path)) as container:
        return [p for p in container.demux(container.streams.video[0]) if p.size]
