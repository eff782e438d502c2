"""Detection cost on a media node: decode at the interval + motion, for a 1080p30 camera.

    python -m benchmarks.detection --seconds 20 --gops 30 60 --interval 1.0

Encodes a 1080p30 H.264 clip per GOP with libx264 (veryfast, CABAC and deblocking on, as
cameras encode; ~4 Mbit/s; a textured still scene with sensor noise and a moving block),
demuxes it into memory, then measures the CPU time (this process, all threads) that each
way of getting one analysed frame per interval costs, as a share of one core in real time
(CPU seconds / seconds of video). The first 3 s of each run are fed unmeasured (the sampler
learns the GOP there). Each figure is the median of --repeats runs.

Also prints the per-call cost of the motion detector at several input sizes and of the
default HOG detector on a 640x360 picture (that one runs on detection workers, not on
the node).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np

from media.detection.hog import HogPeopleDetector
from media.detection.motion import MotionDetector
from media.detection.sampler import FrameSampler

WIDTH, HEIGHT, FPS = 1920, 1080, 30
WARMUP = 3.0  # seconds fed before measuring


def make_clip(path: Path, seconds: int, gop: int, bitrate: int) -> None:
    rng = np.random.default_rng(0)
    coarse = rng.integers(40, 200, (HEIGHT // 8 + 1, WIDTH // 8 + 1), dtype=np.uint8)
    scene = np.asarray(cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC))
    noise = [rng.integers(0, 10, (HEIGHT, WIDTH), dtype=np.uint8) for _ in range(6)]
    chroma = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = bitrate
        stream.options = {
            "preset": "veryfast",
            "g": str(gop),
            "keyint_min": str(gop),
            "sc_threshold": "0",
            "bf": "0",
            "x264-params": "repeat-headers=1",
        }
        for index in range(seconds * FPS):
            luma = scene + noise[index % len(noise)]
            x = (index * 12) % (WIDTH - 240)
            luma[400:640, x : x + 240] = 235
            frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def demux(path: Path) -> list[av.Packet]:
    with av.open(str(path)) as container:
        return [p for p in container.demux(container.streams.video[0]) if p.size]


def seconds_of(packets: list[av.Packet]) -> list[float]:
    start = packets[0].pts * packets[0].time_base
    return [float(p.pts * p.time_base - start) for p in packets]


def sampler_run(interval: float, max_lateness: float | None) -> Callable[[list[av.Packet]], float]:
    def run(packets: list[av.Packet]) -> float:
        sampler = FrameSampler(interval, width=640, max_lateness=max_lateness)
        motion = MotionDetector()
        times = seconds_of(packets)
        started = None
        for packet, at in zip(packets, times, strict=True):
            if started is None and at >= WARMUP:
                started = time.process_time()
            sample = sampler.feed(packet)
            if sample is not None:
                motion.update(sample.image)
        assert started is not None
        return time.process_time() - started

    return run


def decode_all_run(interval: float) -> Callable[[list[av.Packet]], float]:
    """The naive way: decode every frame, analyse one per interval."""

    def run(packets: list[av.Packet]) -> float:
        decoder = av.CodecContext.create("h264", "r")
        decoder.thread_count = 1
        motion = MotionDetector()
        times = seconds_of(packets)
        started = None
        due = 0.0
        for packet, at in zip(packets, times, strict=True):
            if started is None and at >= WARMUP:
                started = time.process_time()
            for frame in decoder.decode(packet):
                if at >= due:
                    due = at + interval
                    motion.update(
                        frame.reformat(width=640, height=360, format="bgr24").to_ndarray()
                    )
        assert started is not None
        return time.process_time() - started

    return run


def median_cpu(
    run: Callable[[list[av.Packet]], float], packets: list[av.Packet], repeats: int
) -> float:
    return statistics.median(run(packets) for _ in range(repeats))


def per_call_ms(function: Callable[[], object], calls: int) -> float:
    function()
    started = time.process_time()
    for _ in range(calls):
        function()
    return (time.process_time() - started) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--gops", type=int, nargs="+", default=[30, 60])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--bitrate", type=int, default=4_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    print(
        f"1080p{FPS}, {args.bitrate / 1e6:.0f} Mbit/s target, interval {args.interval} s, "
        f"{args.seconds} s clips ({args.seconds - WARMUP:.0f} s measured), median of "
        f"{args.repeats}\n"
    )
    print("| GOP | way | CPU, % of one core | frames decoded |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for gop in args.gops:
            path = Path(tmp) / f"gop{gop}.ts"
            make_clip(path, args.seconds, gop, args.bitrate)
            packets = demux(path)
            measured = args.seconds - WARMUP
            mbit = sum(p.size for p in packets) * 8 / args.seconds / 1e6
            ways: list[tuple[str, Callable[[list[av.Packet]], float], float | None]] = [
                ("decode every frame + motion (baseline)", decode_all_run(args.interval), None),
                ("FrameSampler + motion (default)", sampler_run(args.interval, None), None),
            ]
            if gop / FPS > args.interval:
                late = gop / FPS - args.interval
                ways.append(
                    (
                        f"FrameSampler max_lateness={late:g} s (keyframes only)",
                        sampler_run(args.interval, late),
                        late,
                    )
                )
            for name, run, late in ways:
                cpu = median_cpu(run, packets, args.repeats)
                decoded = "all"
                if "FrameSampler" in name:
                    sampler = FrameSampler(args.interval, width=640, max_lateness=late)
                    for packet in packets:
                        sampler.feed(packet)
                    decoded = f"{sampler.stats.decoded} of {sampler.stats.packets}"
                print(
                    f"| {gop} ({gop / FPS:g} s, {mbit:.1f} Mbit/s) | {name} | "
                    f"{cpu / measured * 100:.2f} | {decoded} |"
                )

    print("\n| per call | ms |")
    print("| --- | --- |")
    rng = np.random.default_rng(1)
    big = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    for name, image in (
        ("1920x1080 BGR", big),
        ("640x360 BGR (sampler output)", cv2.resize(big, (640, 360))),
        (
            "320x180 grey (analysis size)",
            cv2.cvtColor(cv2.resize(big, (320, 180)), cv2.COLOR_BGR2GRAY),
        ),
    ):
        detector = MotionDetector()
        detector.update(image)
        cost = per_call_ms(lambda d=detector, i=image: d.update(i), 50)
        print(f"| MotionDetector.update, {name} | {cost:.3f} |")
    scene = np.asarray(
        cv2.resize(
            rng.integers(60, 190, (20, 34, 3), dtype=np.uint8),
            (640, 360),
            interpolation=cv2.INTER_CUBIC,
        )
    )
    hog = HogPeopleDetector()
    print(
        f"| HogPeopleDetector.detect, 640x360 | {per_call_ms(lambda: hog.detect(scene), 10):.1f} |"
    )
    print(
        f"| HogPeopleDetector.detect, 1920x1080 (downscaled to 640) | "
        f"{per_call_ms(lambda: hog.detect(big), 5):.1f} |"
    )


if __name__ == "__main__":
    main()
