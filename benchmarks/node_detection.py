"""The media node's real detection path, per camera: `jobs.node.detection.StreamDetection`
(hand-over from the ingest thread, FrameSampler decode, MotionDetector, JPEG of the sample,
the submit call) at the default settings, interval 1000 ms, motion on, objects on motion.

    python -m benchmarks.node_detection --seconds 20

Encodes a 1080p30 and a 720p25 H.264 clip (libx264 veryfast, GOP = 2 s as many cameras
ship, a textured scene with sensor noise and a block moving all the time, so every sample
has motion and makes a job: the worst case for the node), demuxes it into memory, then feeds
its packets to a StreamDetection as the ingest would and measures this process's CPU time
(all threads) as a share of one core over the clip's duration. The submit counts the jobs
(no Redis: enqueueing is one HLEN and one RPUSH of ~30 KB). Also the same with detection
disabled (the sink returns at once). Median of --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import av
import cv2
import numpy as np

from core.detection_settings import DEFAULTS, parse
from jobs.node.detection import StreamDetection
from jobs.node.protocol import DetectFrame
from media.packet import MediaPacket

PROFILES = {"1080p30": (1920, 1080, 30), "720p25": (1280, 720, 25)}


def make_clip(path: Path, width: int, height: int, fps: int, seconds: int, gop_s: float) -> None:
    rng = np.random.default_rng(0)
    coarse = rng.integers(40, 200, (height // 8 + 1, width // 8 + 1), dtype=np.uint8)
    scene = np.asarray(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC))
    noise = [rng.integers(0, 10, (height, width), dtype=np.uint8) for _ in range(6)]
    chroma = np.full((height // 2, width), 128, np.uint8)
    block = height // 6  # 30x30 analysis pixels: over minArea 500, under the 5 % calm share
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 4_000_000 if width >= 1920 else 2_500_000
        gop = round(gop_s * fps)
        stream.options = {"preset": "veryfast", "g": str(gop), "keyint_min": str(gop),
                          "sc_threshold": "0", "bf": "0", "x264-params": "repeat-headers=1"}
        for index in range(seconds * fps):
            luma = scene + noise[index % len(noise)]
            x = (index * width // 160) % (width - block)
            luma[height // 3: height // 3 + block, x: x + block] = 235
            frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def packets_of(path: Path) -> list[MediaPacket]:
    with av.open(str(path)) as container:
        return [MediaPacket.from_av(p, wallclock=0.0) for p in container.demux(video=0)
                if p.pts is not None and p.size]


def run(packets: list[MediaPacket], enabled: bool) -> tuple[float, int, int]:
    """CPU seconds for the whole clip, jobs made, samples taken."""
    jobs: list[DetectFrame] = []

    def submit(job: DetectFrame) -> bool:
        jobs.append(job)
        return True

    detection = StreamDetection(uuid.uuid4(), uuid.uuid4(), submit)
    detection.apply(parse({"enabled": enabled, "detectionInterval": 1000, "minConfidence": 0.6,
                           **DEFAULTS}))
    thread_started = time.process_time()
    detection.start()
    for packet in packets:
        detection.on_packet(packet)
        while detection._queue.qsize() > 128:  # the ingest's pace is real time; never overflow
            time.sleep(0.001)
    while not detection._queue.empty():
        time.sleep(0.005)
    time.sleep(0.05)  # the last packet's work
    cpu = time.process_time() - thread_started
    detection._stopped.set()
    assert detection.counters.packets_dropped == 0
    return cpu, len(jobs), detection.counters.samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--gop", type=float, default=2.0, help="keyframe spacing, seconds")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"| camera | detection | CPU % of one core | samples | jobs |  ({args.seconds} s, "
          f"GOP {args.gop:g} s, interval 1000 ms, median of {args.repeats})")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (width, height, fps) in PROFILES.items():
            path = Path(tmp) / f"{name}.ts"
            make_clip(path, width, height, fps, args.seconds, args.gop)
            packets = packets_of(path)
            for enabled in (True, False):
                results = [run(packets, enabled) for _ in range(args.repeats)]
                cpu = statistics.median(r[0] for r in results)
                _, jobs, samples = results[0]
                print(f"| {name} | {'on' if enabled else 'off'} | "
                      f"{100 * cpu / args.seconds:.2f} | {samples} | {jobs} |")


if __name__ == "__main__":
    main()
