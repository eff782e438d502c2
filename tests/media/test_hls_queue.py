"""HlsRecorder without a camera: bounded queue, drop-to-keyframe, segment cutting."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from media.hls import HlsRecorder, SegmentInfo
from media.packet import MediaPacket
from tests.media.conftest_media import encode_h264

TB = Fraction(1, 90000)


def test_full_queue_drops_up_to_the_next_keyframe(tmp_path: Path) -> None:
    encoded = encode_h264("baseline", 160, 120, frames=9, gop=3)  # keyframes at 0, 3, 6
    assert encoded.keyframes[:7] == [True, False, False, True, False, False, True]
    packets = [
        MediaPacket(data, i * 6000, i * 6000, TB, key, 1000.0 + i / 15)
        for i, (data, key) in enumerate(zip(encoded.packets, encoded.keyframes, strict=True))
    ]
    segments: list[SegmentInfo] = []
    recorder = HlsRecorder(tmp_path, target_duration=0.1, queue_size=3, on_segment=segments.append)
    for packet in packets[:5]:  # the writer is not running yet: the queue fills up
        recorder.on_packet(packet)
    assert recorder.dropped == 2  # packets 3 (a keyframe) and 4
    recorder.start()
    deadline = time.monotonic() + 5
    while recorder.backlog and time.monotonic() < deadline:
        time.sleep(0.01)
    for packet in packets[5:9]:
        recorder.on_packet(packet)  # 5 is dropped too (still no keyframe), 6 starts again
    recorder.close()
    assert recorder.dropped == 3
    assert [s.filename for s in segments] == ["seg_0.ts", "seg_1.ts"]
    # The first segment lasts until the next one starts: its 3 frames plus the dropped 3.
    assert segments[0].duration == pytest.approx(0.4)
    assert segments[1].duration == pytest.approx(0.2)
    assert segments[1].start.timestamp() == pytest.approx(1000.0 + 6 / 15)
    for segment in segments:
        # format given: a 1.5 kB file is too short for FFmpeg to recognise TS by probing
        with av.open(str(segment.path), format="mpegts") as container:
            frames = list(container.decode(video=0))
        assert len(frames) == 3 and (frames[0].width, frames[0].height) == (160, 120)
