"""The detection decoder's queue (jobs/node/detection.py) is bounded, and every packet it
drops is counted: the overflowing one and those skipped until the next keyframe (the
decoder cannot continue without one). No decode thread runs, so the queue fills."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from jobs.node.detection import PACKET_QUEUE, StreamDetection
from tests.media.webrtc.test_fanout import packet


def test_overflow_drops_to_the_next_keyframe_and_counts_every_packet() -> None:
    detection = StreamDetection(uuid.uuid4(), uuid.uuid4(), submit=lambda _: True)
    active: Any = SimpleNamespace(active=True)  # stands in for the camera's settings
    detection.apply(active)
    fed = [packet(0, keyframe=True), *(packet(n) for n in range(1, PACKET_QUEUE + 20))]
    for p in fed:
        detection.on_packet(p)
    assert detection.counters.packets == PACKET_QUEUE
    assert detection.counters.packets_dropped == len(fed) - PACKET_QUEUE
    # Turning detection off and on again skips to a keyframe without counting drops.
    detection.apply(SimpleNamespace(active=False))  # type: ignore[arg-type]
    detection.on_packet(packet(500))
    detection.apply(active)
    before = detection.counters.packets_dropped
    detection.on_packet(packet(501))
    assert detection.counters.packets_dropped == before
