"""A real H.264 clip from PyAV's libx264 and a camera that feeds it at 30 fps.

Each frame carries its index as a row of black/white blocks, so a receiver can tell which
frame it decoded (and so whether it started from the GOP cache).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from media.gop_cache import GopCache
from media.packet import MediaPacket
from media.webrtc.fanout import Fanout

FPS = 30
GOP = 60  # 2 s, as the brief asks
CLIP_FRAMES = 2 * GOP
WIDTH, HEIGHT = 320, 240
BLOCK = 32  # the frame index is drawn as WIDTH // BLOCK black/white blocks
INDEX_BITS = WIDTH // BLOCK
TIME_BASE = Fraction(1, 90000)
TICKS_PER_FRAME = 90000 // FPS


# --- a real H.264 clip -----------------------------------------------------------------


def _draw(index: int) -> np.ndarray[Any, Any]:
    """A moving gradient (so P-frames carry data) with `index` drawn as blocks."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    img = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    img[..., 0] = (x + 4 * index) % 256
    img[..., 1] = (y + 2 * index) % 256
    img[..., 2] = ((x + y) // 2) % 256
    for bit in range(INDEX_BITS):
        img[0:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255 if (index >> bit) & 1 else 0
    return img


def read_index(frame: av.VideoFrame) -> int:
    """The index drawn by `_draw`, read back from a decoded frame."""
    luma = frame.to_ndarray(format="gray")
    value = 0
    for bit in range(INDEX_BITS):
        block = luma[4 : BLOCK - 4, bit * BLOCK + 4 : (bit + 1) * BLOCK - 4]
        if block.mean() > 128:
            value |= 1 << bit
    return value


@dataclass(frozen=True)
class ClipFrame:
    data: bytes
    is_keyframe: bool


def encode_clip() -> list[ClipFrame]:
    """4 s of 320x240 30 fps baseline H.264 from libx264 with a 2 s GOP, in Annex B."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = Fraction(1, FPS)
    codec.framerate = Fraction(FPS)
    codec.gop_size = GOP
    codec.options = {
        "profile": "baseline",
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0",
    }
    frames: list[ClipFrame] = []
    for i in range(CLIP_FRAMES):
        vf = av.VideoFrame.from_ndarray(_draw(i), format="rgb24").reformat(format="yuv420p")
        vf.pts = i
        for packet in codec.encode(vf):
            frames.append(ClipFrame(bytes(packet), bool(packet.is_keyframe)))
    for packet in codec.encode(None):
        frames.append(ClipFrame(bytes(packet), bool(packet.is_keyframe)))
    assert len(frames) == CLIP_FRAMES
    assert [i for i, f in enumerate(frames) if f.is_keyframe] == [0, GOP]
    # Each IDR carries SPS and PPS in-band (NAL types 7 and 8 after a start code).
    assert b"\x00\x00\x00\x01\x67" in frames[0].data or b"\x00\x00\x01\x67" in frames[0].data
    return frames


# --- a paced camera ----------------------------------------------------------------------


class Camera:
    """Feeds the clip (looped, timestamps continuing) at 30 fps from a thread of its own,
    into the GOP cache first and then the fan-out, as the ingest does."""

    def __init__(self, clip: list[ClipFrame], gop_cache: GopCache, fanout: Fanout) -> None:
        self._clip = clip
        self._gop_cache = gop_cache
        self._fanout = fanout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-camera", daemon=True)
        self.sent = 0
        #: (monotonic time, frame number) of every keyframe fed.
        self.keyframes: list[tuple[float, int]] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self._stop.is_set():
            delay = start + n / FPS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            frame = self._clip[n % len(self._clip)]
            pkt = MediaPacket(
                data=frame.data,
                pts=n * TICKS_PER_FRAME,
                dts=n * TICKS_PER_FRAME,
                time_base=TIME_BASE,
                is_keyframe=frame.is_keyframe,
                wallclock=time.time(),
            )
            if frame.is_keyframe:
                self.keyframes.append((time.monotonic(), n))
            self._gop_cache.add(pkt)
            self._fanout.on_packet(pkt)
            n += 1
            self.sent = n

    async def wait_for_frame(self, number: int, timeout: float = 10.0) -> None:
        """Wait until frame `number` (counting from 0) has been fed."""
        async with asyncio.timeout(timeout):
            while self.sent <= number:
                await asyncio.sleep(0.005)


@dataclass
class Stream:
    fanout: Fanout
    gop_cache: GopCache
    camera: Camera
