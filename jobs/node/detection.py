"""A stream's detection on the media node that owns it: frame sampling and motion detection
at the camera's interval, and object-detection jobs sent to the `detect` queue.

`StreamDetection` is a sink of the ingest. The ingest thread only hands packets over (a
bounded queue; on overflow it drops until the next keyframe, counted) and only while
detection is active, so a camera with detection off costs nothing: no packet queued, no
decode. Decoding (`FrameSampler`), motion (`MotionDetector`), JPEG encoding and the enqueue
run on a thread of their own, never on the ingest's thread or the event loop.

Settings are re-read from the database by a task on the node's event loop at once when the
API announces a change (`refresh()`, from the node's subscription to the settings channel,
core.detection_changes), and every min(interval, 1 s) anyway (at least 250 ms apart; a missed
announcement costs at most that), so a change reaches a running camera well within one
interval without restarting its stream. See docs/detection.md, "On the media node".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import cv2

from core.detection_settings import DetectionSettings, DetectionSettingsService
from jobs.metrics import cpu_spent
from jobs.node.protocol import DetectFrame
from media.detection.boxes import Box
from media.detection.motion import MotionDetector, threshold_for
from media.detection.regions import Region
from media.detection.sampler import FrameSampler, SampledFrame
from media.packet import MediaPacket

logger = logging.getLogger(__name__)

PACKET_QUEUE = 256  # packets waiting for the decode thread (~8 s at 30 fps)
SAMPLE_WIDTH = 640  # width of the frame sent to the object detector
JPEG_QUALITY = 80
MIN_REREAD_S = 0.25

# Sends one job; False when it was skipped (the detect queue is deeper than its bound).
Submit = Callable[[DetectFrame], bool]


@dataclass
class DetectionCounters:
    """What the node's detection did for one stream (reported with the stream's metrics)."""

    packets: int = 0  # packets handed to the decode thread
    packets_dropped: int = 0  # dropped because the decode thread fell behind
    decoded: int = 0  # packets the sampler decoded
    samples: int = 0  # frames sampled at the interval
    motion_samples: int = 0  # samples in which motion was found
    jobs_sent: int = 0  # object-detection jobs enqueued
    jobs_skipped: int = 0  # not enqueued: the detect queue was deeper than its bound
    settings_reads: int = 0  # times the settings were read from the database
    # Unix times: when changed settings came into force (0: the first ones), when the last
    # sample was taken and the last one with motion (frame arrival times; 0: none yet).
    settings_applied_at: float = 0.0
    last_sample_at: float = 0.0
    last_motion_at: float = 0.0


class StreamDetection:
    """Sampling and motion of one camera's stream; `on_packet` is its sink side."""

    def __init__(self, camera_id: uuid.UUID, stream_id: uuid.UUID, submit: Submit,
                 service: DetectionSettingsService | None = None) -> None:
        self.camera_id = camera_id
        self.stream_id = stream_id
        self.counters = DetectionCounters()
        self._submit = submit
        self._service = service
        self._settings: DetectionSettings | None = None
        self._queue: queue.Queue[MediaPacket | None] = queue.Queue(PACKET_QUEUE)
        self._skip_to_key = True
        self._dropping = False  # skipping to a keyframe after an overflow (counted)
        self._sampler: FrameSampler | None = None
        self._motion: MotionDetector | None = None
        self._motion_key: tuple[Any, ...] | None = None  # the regions it masks with
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._stopped = threading.Event()

    @property
    def active(self) -> bool:
        settings = self._settings
        return settings is not None and settings.active

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the decode thread and, with a settings service, the settings task."""
        self._thread = threading.Thread(target=self._run, name=f"detect {self.stream_id}",
                                        daemon=True)
        self._thread.start()
        if self._service is not None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._follow_settings())

    def refresh(self) -> None:
        """Re-read the settings now (on the event loop: a change was announced)."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        """Stop the settings task and the decode thread and wait for both."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._stopped.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5.0)

    def apply(self, settings: DetectionSettings) -> None:
        """Use `settings` from the next packet on (any thread)."""
        previous = self._settings
        self._settings = settings
        if previous is not None and previous != settings:
            self.counters.settings_applied_at = time.time()

    async def _follow_settings(self) -> None:
        assert self._service is not None and self._wake is not None
        while True:
            self._wake.clear()
            try:
                self.apply(await self._service.camera_settings(self.camera_id, fresh=True))
                self.counters.settings_reads += 1
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may blip; the last settings stay in force
                logger.exception("camera %s: reading detection settings failed", self.camera_id)
            settings = self._settings
            period = settings.interval_ms / 1000 if settings is not None else 1.0
            with contextlib.suppress(TimeoutError):  # an announced change wakes it early
                await asyncio.wait_for(self._wake.wait(), max(MIN_REREAD_S, min(period, 1.0)))

    # -- the ingest's side ----------------------------------------------------------------

    def on_packet(self, packet: MediaPacket) -> None:
        """On the ingest thread: hand the packet over, never wait."""
        if not self.active:
            self._skip_to_key, self._dropping = True, False
            return
        if self._skip_to_key:
            if not packet.is_keyframe:
                self.counters.packets_dropped += self._dropping  # skipped after an overflow
                return
            self._skip_to_key = self._dropping = False
        try:
            self._queue.put_nowait(packet)
            self.counters.packets += 1
        except queue.Full:
            self.counters.packets_dropped += 1
            # The decoder needs a keyframe after a gap: what comes until then is dropped too.
            self._skip_to_key = self._dropping = True

    # -- the decode thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                packet = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if packet is None:
                break
            settings = self._settings
            if settings is None or not settings.active:
                self._sampler = None  # decode nothing; start clean when turned on again
                continue
            try:
                with cpu_spent("detection", "node"):
                    self._process(packet, settings)
            except Exception:
                logger.exception("camera %s: detection failed on a packet", self.camera_id)

    def _process(self, packet: MediaPacket, settings: DetectionSettings) -> None:
        interval = settings.interval_ms / 1000
        if self._sampler is None or self._sampler.interval != interval:
            self._sampler = FrameSampler(interval, SAMPLE_WIDTH)
        before = self._sampler.stats.decoded
        sample = self._sampler.feed(packet)
        self.counters.decoded += self._sampler.stats.decoded - before
        if sample is None:
            return
        self.counters.samples += 1
        taken = sample.wallclock if sample.wallclock is not None else time.time()
        self.counters.last_sample_at = taken
        motion: list[Box] = []
        if settings.motion.enabled:
            motion = self._motion_boxes(sample, settings)
            if not motion:
                return
            self.counters.motion_samples += 1
            self.counters.last_motion_at = taken
        elif not settings.objects_enabled:
            return
        self._send(sample, settings, motion)

    def _motion_boxes(self, sample: SampledFrame, settings: DetectionSettings) -> list[Box]:
        motion = settings.motion
        if self._motion is None or settings.regions != self._motion_key:
            regions = [Region(r.points, r.enabled, r.name) for r in settings.regions]
            self._motion = MotionDetector(motion.sensitivity, motion.min_area, regions=regions)
            self._motion_key = settings.regions
        elif (motion.sensitivity, motion.min_area) != (self._motion.sensitivity,
                                                       self._motion.min_area):
            # Thresholds change in place: the background stays, no recalibration.
            self._motion.sensitivity = motion.sensitivity
            self._motion.threshold = threshold_for(motion.sensitivity)
            self._motion.min_area = motion.min_area
        return [self._motion.to_frame(box) for box in self._motion.update(sample.image)]

    def _send(self, sample: SampledFrame, settings: DetectionSettings, motion: list[Box]) -> None:
        ok, jpeg = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            logger.warning("camera %s: JPEG encoding failed", self.camera_id)
            return
        height, width = sample.image.shape[:2]
        job = DetectFrame(
            camera_id=self.camera_id, stream_id=self.stream_id,
            wallclock=sample.wallclock if sample.wallclock is not None else time.time(),
            frame_size=(width, height), source_size=sample.source_size,
            motion=[(b.x, b.y, b.width, b.height) for b in motion],
            jpeg=jpeg.tobytes(),
        )
        if self._submit(job):
            self.counters.jobs_sent += 1
        else:
            self.counters.jobs_skipped += 1

    def stats(self) -> dict[str, float]:
        """The counters, for the stream's metrics."""
        return asdict(self.counters)
