"""Detection workers: the `detect_frame` job on the `detect` queue.

A job (`jobs.node.protocol.DetectFrame`) holds one sampled frame of a camera. The worker
reads the camera's effective settings, turns the node's motion boxes into a `motion`
detection, runs the object detector (HOG by default, the ONNX model of
`VAS_DETECTOR_MODEL` when set; one instance per worker thread) when an object type is on,
keeps what `minConfidence`, `objectTypes` and the enabled regions (bottom-centre rule) let
through, merges each type's detection into its event (core/events.py, serialised per
camera and type by a Redis lock, so any number of workers share one merge), and publishes
each new event on the WebSocket.

Idempotent: a job run twice (a worker killed before its ack, Dramatiq redelivers) merges
into the event the first run opened, within the cool-down.
"""

from __future__ import annotations

import datetime
import logging
import threading
import uuid
from typing import Any

import cv2
import numpy as np
import redis

from core import notify
from core.detection_settings import DetectionSettings, DetectionSettingsService
from core.devices import device_name
from core.errors import NotFound
from core.events import EventRecord, EventService
from core.recording_sessions import RecordingSessionService
from core.recordings import RecordingIndex
from core.settings import Settings
from core.system_settings import SystemSettingsService
from jobs.context import JobContext
from jobs.node.protocol import DetectFrame
from media.detection.boxes import Box
from media.detection.events import DEFAULT_COOLDOWN
from media.detection.objects import BgrImage, ObjectDetector, accept, load_detector
from media.detection.regions import Region, filter_in_regions

logger = logging.getLogger(__name__)

LOCK_S = 30.0


def cooldown_for(settings: DetectionSettings) -> float:
    """Seconds without a detection after which an event of a type ends: 10 s, or three
    intervals for intervals over 3.3 s (so one missed sample does not split an event)."""
    return max(DEFAULT_COOLDOWN, 3 * settings.interval_ms / 1000)


def thumbnail_url(event: EventRecord) -> str | None:
    """Where the API serves the event's thumbnail."""
    return f"/media/thumbnails/events/{event.id}" if event.thumbnail else None


class DetectionWorker:
    """What one worker process needs to run detection jobs."""

    def __init__(self, ctx: JobContext) -> None:
        settings: Settings = ctx.settings
        self._ctx = ctx
        self._namespace = settings.redis.namespace
        self._redis = redis.Redis.from_url(settings.redis.url or "")
        self.events = EventService(settings.server.data_dir)
        data_dir = settings.server.data_dir
        self.sessions = RecordingSessionService(data_dir / "recordings" / "sessions",
                                                RecordingIndex(settings.media.recordings_dir(data_dir)))
        self.settings = DetectionSettingsService(SystemSettingsService(
            settings.media.recordings_dir(settings.server.data_dir)))
        self._model = settings.media.detector_model
        self._local = threading.local()

    def detector(self) -> ObjectDetector:
        """This thread's detector (loaded on first use; a broken model fails the job)."""
        detector: ObjectDetector | None = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = load_detector(self._model)
        return detector

    def handle(self, job: DetectFrame) -> list[EventRecord]:
        """Run one job; the events it opened."""
        settings = self._ctx.run(self.settings.camera_settings(job.camera_id))
        if not settings.enabled:
            return []
        # type -> (confidence, box in frame pixels); motion boxes count fully (confidence 1)
        found: dict[str, list[tuple[float, Box]]] = {}
        if job.motion and settings.motion.enabled:
            found["motion"] = [(1.0, Box(*box)) for box in job.motion]
        if settings.objects_enabled:
            decoded = cv2.imdecode(np.frombuffer(job.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if decoded is None:
                logger.warning("camera %s: a detect job's JPEG does not decode", job.camera_id)
                return []
            image: BgrImage = np.asarray(decoded, np.uint8)
            types = {k.type: (k.enabled, k.min_confidence) for k in settings.object_types}
            kept = accept(self.detector().detect(image), settings.min_confidence, types)
            regions = [Region(r.points, r.enabled, r.name) for r in settings.regions]
            for detection in filter_in_regions(kept, lambda d: d.box, job.frame_size, regions):
                found.setdefault(detection.label, []).append((detection.confidence, detection.box))
        opened = []
        at = datetime.datetime.fromtimestamp(job.wallclock, datetime.UTC)
        for event_type, detections in found.items():
            event = self._merge(job, event_type, at, detections, cooldown_for(settings))
            if event is not None:
                opened.append(event)
        return opened

    def _merge(self, job: DetectFrame, event_type: str, at: datetime.datetime,
               detections: list[tuple[float, Box]], cooldown: float) -> EventRecord | None:
        objects = [{
            "id": str(uuid.uuid5(job.camera_id, f"{job.wallclock}:{event_type}:{index}")),
            "type": event_type,
            "confidence": round(confidence, 4),
            "boundingBox": _in_camera(box, job.frame_size, job.source_size),
        } for index, (confidence, box) in enumerate(detections)]
        confidence = max(confidence for confidence, _ in detections)
        lock = self._redis.lock(f"{self._namespace}:detect-merge:{job.camera_id}:{event_type}",
                                timeout=LOCK_S, blocking_timeout=LOCK_S)
        with lock:
            event, created = self._ctx.run(self.events.record_detection(
                job.camera_id, job.stream_id, event_type, at, round(confidence, 4), objects,
                job.source_size, job.jpeg, cooldown))
        if not created:
            return None
        self._publish(event)
        return event

    def _publish(self, event: EventRecord) -> None:
        try:
            name = self._ctx.run(device_name(event.camera_id))
        except NotFound:
            name = ""  # the camera was deleted meanwhile
        message = notify.event(event.id, event.camera_id, name, self._recording_id(event),
                               event.start_at, event.type, event.confidence,
                               thumbnail_url(event))
        try:
            notify.publish_sync(self._redis, self._namespace, message)
        except redis.RedisError:
            logger.warning("event %s: could not publish it on the WebSocket", event.id)

    def _recording_id(self, event: EventRecord) -> uuid.UUID | None:
        """The recording holding the event's moment, as `GET /events/:id` will name it: a
        manual recording running then, else the stream's continuous recording, whose id is
        the stream's (its row may not be written yet: the API writes it on its next read)."""
        held = self._ctx.run(self.sessions.holding([(event.camera_id, event.start_at)]))
        record = held.get((event.camera_id, event.start_at))
        if record is not None and record.kind == "manual":
            return record.id
        return event.stream_id

    def close(self) -> None:
        self._redis.close()


def _in_camera(box: Box, frame_size: tuple[int, int],
               source_size: tuple[int, int]) -> dict[str, int]:
    scaled = box.scaled(frame_size, source_size).clipped(*source_size)
    return {"x": scaled.x, "y": scaled.y, "width": scaled.width, "height": scaled.height}


def detection_worker(ctx: JobContext) -> DetectionWorker:
    """The process's DetectionWorker (made on the first job)."""
    worker: Any = ctx.extras.get("detection")
    if worker is None:
        worker = ctx.extras["detection"] = DetectionWorker(ctx)
    assert isinstance(worker, DetectionWorker)
    return worker
