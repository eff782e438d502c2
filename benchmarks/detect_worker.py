"""A detection worker's CPU per object job, whole: a real `vas detector` process fed real
`detect` jobs, as a media node sends them, at the default settings.

    python -m benchmarks.detect_worker --jobs 100
    python -m benchmarks.detect_worker --jobs 100 --postgres

Starts `vas detector` on the machine's Redis (its own namespace) and a throwaway data
directory (embedded SQLite, or with --postgres a new database on the machine's PostgreSQL),
with one camera row. Then sends it, one at a time, --jobs jobs of each kind through
`JobClient.send_detection` (the node's own call): a 640x360 JPEG (quality as the node's) of
the person scene (tests.camera.PERSON_IMAGE on a textured background, walking across,
sensor noise) with the motion box around the person, and a motion-only frame (a light block
on the same background, no person). Each job's timestamp is one interval (1 s) after the
previous one, as a camera with something moving in view for --jobs seconds makes them: the
first job opens the camera's events, the rest merge into them (docs/detection.md).

Per job, from the enqueue to the moment the `detect` queue holds no message (the worker
acked it): the CPU time of the detector process, all threads (sum of
/proc/PID/task/*/schedstat, nanoseconds), and the wall time. Also the process's
utime + stime (/proc/PID/stat, clock ticks) over each kind's jobs divided by their number,
and its idle CPU (heartbeats, housekeeping) over --idle seconds before the jobs, which the
per-job figures include. For the share of the detector itself, the JPEG decode + HOG
`detect` of the same frames is then timed alone in this process (CPU time, all threads).
A few unmeasured jobs first warm the process up (the HOG model, the database connections).
At the end the events the jobs made are checked: a `person` and a `motion` event from the
person jobs, only a `motion` event from the motion-only ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import redis

from benchmarks.common import cpu_seconds, percentile, progress
from core.clock import utcnow
from core.db import close_database, open_database
from core.events import EventFilter, EventService
from core.settings import Settings, load_settings
from core.tables import Device
from jobs.broker import build_broker
from jobs.client import JobClient
from jobs.node.detection import JPEG_QUALITY
from jobs.node.protocol import DetectFrame
from media.detection.boxes import Box
from media.detection.hog import HogPeopleDetector
from tests.conftest import POSTGRES_URL, REDIS_URL, _new_database
from tests.e2e.processes import VasProcess, clean_env
from tests.media.detection.scenes import background, with_block, with_noise, with_person

WIDTH, HEIGHT = 640, 360
SOURCE = (1920, 1080)  # the camera's own size, as the node reports it
VARIANTS = 8  # distinct frames per kind (person position, sensor noise)
WARMUP = 5  # unmeasured jobs of each kind first


@dataclass(frozen=True)
class Frame:
    jpeg: bytes
    motion: list[tuple[int, int, int, int]]


def encode(image: np.ndarray) -> bytes:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return bytes(jpeg.tobytes())


def person_frames() -> list[Frame]:
    """The person (280 px tall, as in the camera's person scene) walking across."""
    still = background(WIDTH, HEIGHT)
    frames = []
    for index in range(VARIANTS):
        x = 20 + index * (WIDTH - 200) // VARIANTS
        scene, person = with_person(still, x, 40, 280)
        frames.append(Frame(encode(with_noise(scene, index)),
                            [(person.x, person.y, person.width, person.height)]))
    return frames


def motion_frames() -> list[Frame]:
    """A light block moving across the same background: motion, no object."""
    still = background(WIDTH, HEIGHT)
    frames = []
    for index in range(VARIANTS):
        block = Box(20 + index * (WIDTH - 140) // VARIANTS, 100, 80, 160)
        frames.append(Frame(encode(with_noise(with_block(still, block), index)),
                            [(block.x, block.y, block.width, block.height)]))
    return frames


def hog_alone_ms(frames: list[Frame], calls: int = 40) -> float:
    """CPU ms (this process, all threads) of JPEG decode + the default detector alone."""
    detector = HogPeopleDetector()
    detector.detect(cv2.imdecode(np.frombuffer(frames[0].jpeg, np.uint8), cv2.IMREAD_COLOR))
    start = time.process_time()
    for index in range(calls):
        jpeg = np.frombuffer(frames[index % len(frames)].jpeg, np.uint8)
        detector.detect(np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8))
    return (time.process_time() - start) * 1e3 / calls


def task_cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid` so far, in nanoseconds (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


@dataclass
class Run:
    cpu_ms: list[float]
    wall_ms: list[float]
    stat_ms_per_job: float


class Bench:
    def __init__(self, settings: Settings, pid: int) -> None:
        self.pid = pid
        self.broker = build_broker(settings.redis)
        self.jobs = JobClient(self.broker, {})
        self.stream = uuid.uuid4()
        self.clock = time.time() - 3600.0  # job timestamps, one interval apart

    def send(self, camera: uuid.UUID, frame: Frame) -> None:
        self.clock += 1.0
        job = DetectFrame(camera_id=camera, stream_id=self.stream, wallclock=self.clock,
                          frame_size=(WIDTH, HEIGHT), source_size=SOURCE,
                          motion=frame.motion, jpeg=frame.jpeg)
        assert self.jobs.send_detection(job, max_depth=1000)

    def wait_done(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.jobs.detect_depth():
            if time.monotonic() > deadline:
                raise RuntimeError("the detector did not finish its job")
            time.sleep(0.0005)

    def run(self, camera: uuid.UUID, frames: list[Frame], count: int) -> Run:
        for index in range(WARMUP):
            self.send(camera, frames[index % len(frames)])
            self.wait_done()
        cpu_ms, wall_ms = [], []
        stat_before = cpu_seconds(self.pid)
        for index in range(count):
            frame = frames[index % len(frames)]
            cpu0, wall0 = task_cpu_ns(self.pid), time.perf_counter()
            self.send(camera, frame)
            self.wait_done()
            wall1, cpu1 = time.perf_counter(), task_cpu_ns(self.pid)
            cpu_ms.append((cpu1 - cpu0) / 1e6)
            wall_ms.append((wall1 - wall0) * 1e3)
        stat_ms = (cpu_seconds(self.pid) - stat_before) * 1e3 / count
        return Run(cpu_ms, wall_ms, stat_ms)

    def idle_ms_per_s(self, seconds: float) -> float:
        cpu0, wall0 = task_cpu_ns(self.pid), time.monotonic()
        time.sleep(seconds)
        return (task_cpu_ns(self.pid) - cpu0) / 1e6 / (time.monotonic() - wall0)

    def close(self) -> None:
        self.broker.close()


async def add_camera(settings: Settings) -> uuid.UUID:
    with contextlib.redirect_stdout(io.StringIO()):  # the migrations' progress lines
        engine = await open_database(settings.database)  # creates the schema
    try:
        camera = uuid.uuid4()
        await Device(id=camera, name=f"bench {camera.hex[:6]}", created_at=utcnow(),
                     rtsp_url="rtsp://127.0.0.1:8554/bench", is_active=True).save()
        return camera
    finally:
        await close_database(engine)


async def event_types(settings: Settings, camera: uuid.UUID) -> list[str]:
    engine = await open_database(settings.database, create=False)
    try:
        rows, _ = await EventService(settings.server.data_dir).page(
            EventFilter(camera_id=camera), 1, 100)
        return sorted(row.type for row in rows)
    finally:
        await close_database(engine)


def report(kind: str, run: Run) -> None:
    cpu, wall = run.cpu_ms, run.wall_ms
    print(f"{kind:<12} jobs {len(cpu):4d}  CPU ms/job: p50 {statistics.median(cpu):6.1f}  "
          f"mean {statistics.fmean(cpu):6.1f}  p90 {percentile(cpu, 90):6.1f}  "
          f"(stat ticks: {run.stat_ms_per_job:5.1f})   wall ms/job: p50 "
          f"{statistics.median(wall):6.1f}  mean {statistics.fmean(wall):6.1f}  "
          f"p90 {percentile(wall, 90):6.1f}")


@contextlib.contextmanager
def database(postgres: bool) -> Iterator[dict[str, str]]:
    if not postgres:
        yield {}
        return
    with contextlib.contextmanager(_new_database)(POSTGRES_URL, "vas_bench") as url:
        yield {"DATABASE_URL": url}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="measured jobs of each kind")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    args = parser.parse_args()
    frames = {"person": person_frames(), "motion-only": motion_frames()}
    namespace = f"vas-bench-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp, database(args.postgres) as db_env:
        env = {"VAS_DATA_DIR": str(Path(tmp) / "data"), "VAS_REDIS_NAMESPACE": namespace,
               "REDIS_URL": REDIS_URL, **db_env}
        settings = load_settings(env)
        cameras = {kind: asyncio.run(add_camera(settings)) for kind in frames}
        detector = VasProcess("detector", clean_env(**env), Path(tmp))
        bench = None
        try:
            deadline = time.monotonic() + 120
            while "serving queues" not in detector.output:
                if detector.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"vas detector did not start:\n{detector.output}")
                time.sleep(0.05)
            bench = Bench(settings, detector.proc.pid)
            progress(f"vas detector pid {bench.pid}; idle for {args.idle:.0f} s")
            idle = bench.idle_ms_per_s(args.idle)
            runs = {}
            for kind, kind_frames in frames.items():
                progress(f"{kind}: {WARMUP} warm-up + {args.jobs} jobs")
                runs[kind] = bench.run(cameras[kind], kind_frames, args.jobs)
            found = {kind: asyncio.run(event_types(settings, camera))
                     for kind, camera in cameras.items()}
        finally:
            if bench is not None:
                bench.close()
            detector.interrupt()
            with contextlib.suppress(redis.RedisError):
                client = redis.Redis.from_url(REDIS_URL)
                keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
                if keys:
                    client.delete(*keys)
                client.close()
    print(f"database {'postgresql' if args.postgres else 'sqlite'}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.2f}; detector idle CPU {idle:.2f} ms/s")
    for kind, run in runs.items():
        report(kind, run)
    for kind, kind_frames in frames.items():
        print(f"{kind:<12} decode + HOG alone, in this process: "
              f"{hog_alone_ms(kind_frames):.1f} CPU ms/call")
    print(f"events: person jobs -> {found['person']}, motion-only jobs -> "
          f"{found['motion-only']}")
    assert found["person"] == ["motion", "person"], found
    assert found["motion-only"] == ["motion"], found


if __name__ == "__main__":
    main()
