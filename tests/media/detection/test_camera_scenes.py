"""End to end through the RTSP test camera: PyAV demuxes, FrameSampler decodes at the
interval, MotionDetector / HogPeopleDetector analyse, EventMerger makes events, the way the
media node and the detection workers will."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import av
import av.container
import pytest

from media.detection.boxes import Box
from media.detection.events import EventMerger
from media.detection.hog import HogPeopleDetector
from media.detection.motion import MotionDetector
from media.detection.regions import Region
from media.detection.sampler import FrameSampler, SampledFrame
from media.packet import MediaPacket
from tests.camera import CameraProfile, TestCamera

StartCamera = Callable[..., TestCamera]

WIDTH, HEIGHT = 640, 360
SCENE = CameraProfile(width=WIDTH, height=HEIGHT, fps=15, gop=15, bitrate_kbps=800)
RIGHT_SIDE = (0.55, 0.2, 1.0, 0.8)


def open_rtsp(url: str) -> av.container.InputContainer:
    return av.open(
        url, options={"rtsp_transport": "tcp", "timeout": "5000000", "fpsprobesize": "0"}
    )


def samples(
    container: av.container.InputContainer, sampler: FrameSampler, seconds: float
) -> Iterator[SampledFrame]:
    """Samples from the camera for ``seconds`` of wall-clock time."""
    deadline = time.monotonic() + seconds
    for packet in container.demux(container.streams.video[0]):
        if packet.pts is None or not packet.size:
            continue
        sample = sampler.feed(MediaPacket.from_av(packet, wallclock=time.time()))
        if sample is not None:
            yield sample
        if time.monotonic() > deadline:
            return


@pytest.mark.slow
def test_still_scene_then_motion_on_the_right(start_camera: StartCamera) -> None:
    camera = start_camera(SCENE, scene="motion", pattern="smpte100", object_area=RIGHT_SIDE)
    watch_all = MotionDetector(sensitivity=0.5, min_area=100)
    left_only = MotionDetector(
        sensitivity=0.5,
        min_area=100,
        regions=[Region.from_coordinates([[0, 0], [0.5, 0], [0.5, 1], [0, 1]])],
    )
    merger = EventMerger(cooldown=3.0)
    sampler = FrameSampler(interval=0.5)
    transitions = []
    with open_rtsp(camera.url) as container:
        still = []
        for sample in samples(container, sampler, 3.0):
            still.append(watch_all.update(sample.image))
            left_only.update(sample.image)
        camera.set_motion(True)
        moving_since = time.time()
        moving: list[tuple[SampledFrame, list[Box], list[Box]]] = []
        for sample in samples(container, sampler, 4.0):
            boxes, left_boxes = watch_all.update(sample.image), left_only.update(sample.image)
            assert sample.wallclock is not None
            transitions += merger.expire(sample.wallclock)
            if sample.wallclock > moving_since + 0.2:  # frames captured after the command
                moving.append((sample, boxes, left_boxes))
                for box in boxes:
                    transitions += merger.observe("motion", sample.wallclock, 1.0, box)

    # Still: after the first frame (the background) nothing moves.
    assert len(still) >= 5
    assert all(boxes == [] for boxes in still[1:]), still
    # Moving: motion in (nearly) every sample, always on the right where the block moves.
    with_motion = [boxes for _, boxes, _ in moving if boxes]
    assert len(with_motion) >= len(moving) - 1 >= 5, moving
    for sample, boxes, _ in moving:
        for box in boxes:
            on_camera = watch_all.to_frame(box)
            assert on_camera.x >= 0.5 * WIDTH and on_camera.right <= WIDTH, on_camera
            assert on_camera.y >= 0.15 * HEIGHT and on_camera.bottom <= 0.85 * HEIGHT, on_camera
        assert sample.source_size == (WIDTH, HEIGHT)
    # Watching only the left half: the same motion is not seen at all.
    assert all(left == [] for _, _, left in moving)
    # And it all makes one motion event.
    assert [(t.change, t.event.kind) for t in transitions if t.change != "updated"] == [
        ("opened", "motion")
    ]


@pytest.mark.slow
def test_person_walking_across_is_found_by_the_default_detector(
    start_camera: StartCamera,
) -> None:
    camera = start_camera(SCENE, scene="person", pattern="gradient", moving=True)
    detector = HogPeopleDetector()
    merger = EventMerger(cooldown=3.0)
    sampler = FrameSampler(interval=1.0)
    found = []
    transitions = []
    with open_rtsp(camera.url) as container:
        for sample in samples(container, sampler, 5.0):
            assert sample.wallclock is not None
            people = [d for d in detector.detect(sample.image) if d.confidence >= 0.5]
            found.append(people)
            for person in people:
                transitions += merger.observe(
                    "person", sample.wallclock, person.confidence, person.box
                )
    assert len(found) >= 4
    # The person is in every frame; HOG must find them in most.
    assert sum(1 for people in found if people) >= len(found) - 1, found
    for people in found:
        assert len(people) <= 1
        for person in people:
            # The person is ~324 px tall, feet near the bottom edge.
            assert person.box.height > 200 and person.box.bottom > 0.8 * HEIGHT, person
    assert [(t.change, t.event.kind) for t in transitions if t.change == "opened"] == [
        ("opened", "person")
    ]
