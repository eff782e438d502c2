"""The full scale-out drill: many media nodes, cameras and viewers; one node killed, one
stopped as Kubernetes stops a pod. Figures for docs/scale-out.md ("The full drill").

    .venv/bin/python -m benchmarks.scale_drill        # 2 APIs, 2 workers, 4 nodes x 12,
                                                      # 40 cameras, 20 viewers
    .venv/bin/python -m benchmarks.scale_drill --nodes 3 --capacity 4 --cameras 8 --viewers 4

Real PostgreSQL (a fresh database) and Redis (a namespace of its own), `vas api`, `vas
worker` and `vas media-node` as processes with the default heartbeat and lease, test
cameras of tests/camera (320x240, 10 fps), every stream started through the APIs, WebRTC
viewers with the Python consumer of vas_client. A sampler thread (benchmarks/scale_sampler.py)
reads the API's and every node's /metrics, the stream rows, the cameras' RTSP connections and
CPU and memory of each process every second through the whole run. Then:

1. SIGKILL the node that runs most streams. Each of its streams' gap from the signal until it
   is LIVE again (a LIVE written after the signal): on another node, or, for the streams no
   survivor has a seat for, on the same node started again under its VAS_NODE_ID, as its
   StatefulSet pod would be (`--restart-after`; by default as soon as every stream with a
   seat has moved, or 20 s after the signal, whichever comes first).
2. SIGTERM the fullest of the others: the same, with the hand-over instead of lease expiry.
3. Viewers of moved streams re-attach and must get video; no camera may ever have two RTSP
   connections, nor none while its stream is LIVE outside a fault; a timeline of /metrics
   around each fault; CPU and memory per process; commit, machine and load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import ADMIN_SECRET, progress
from benchmarks.scale_cluster import Cluster, Member
from benchmarks.scale_report import Fault, commit, machine, report, uptime
from benchmarks.scale_sampler import Sampler
from tests.camera import CameraProfile, TestCamera
from vas_client import StreamConsumer, VasClient
from vas_client.http import VasError

LIGHT = CameraProfile(width=320, height=240, fps=10, gop=10)
AUTO_RESTART_S = 20.0  # the default restart's latest time after the signal
WATCH_AFTER_RESTART_S = 90.0  # how long the streams may take once the node is back


class Viewer:
    """A WebRTC viewer that re-attaches as the guide says: when its transport closes, or when
    told its stream moved (a killed node's transport only times out)."""

    def __init__(self, client: VasClient, stream_id: str) -> None:
        self.client, self.stream_id = client, stream_id
        self.frames = 0
        self.moved = asyncio.Event()
        self.since: float | None = None  # the signal that moved the stream (monotonic)
        self.back_after: list[float] = []  # signal → first frame after re-attaching
        self.ended = 0  # transports the node closed
        self._closing: set[asyncio.Future[None]] = set()
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            attached_at = time.monotonic()
            consumer = StreamConsumer(self.client, self.stream_id, local_ip="127.0.0.1")
            try:
                await consumer.start()
                await self._watch(consumer, attached_at)
            except Exception:  # not running yet: the guide's client retries
                await asyncio.sleep(0.5)
            finally:
                # Not waited for: aiortc's receiver can take a minute to stop (docs/scale-out.md)
                # and a client attaches again without waiting for the old one to close.
                self._closing.add(asyncio.ensure_future(consumer.close()))

    async def _watch(self, consumer: StreamConsumer, attached_at: float) -> None:
        reader = asyncio.ensure_future(self._read(consumer, attached_at))
        moved = asyncio.ensure_future(self.moved.wait())
        done, _ = await asyncio.wait({reader, moved}, return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()
        moved.cancel()
        if reader in done and not self.moved.is_set():
            self.ended += 1
        self.moved.clear()

    async def _read(self, consumer: StreamConsumer, attached_at: float) -> None:
        async for _ in consumer.frames():
            self.frames += 1
            # Only a consumer attached after the signal counts (not frames still buffered).
            if self.since is not None and attached_at > self.since:
                self.back_after.append(time.monotonic() - self.since)
                self.since = None


class Drill:
    def __init__(self, args: argparse.Namespace, cluster: Cluster) -> None:
        self.args = args
        self.cluster = cluster
        self.cameras: dict[str, TestCamera] = {}  # stream id → its camera
        self.ports: dict[str, int] = {}  # stream id → its camera's port (the sampler's)
        self.viewers: list[Viewer] = []
        self.faults: list[Fault] = []
        self.watched: dict[str, list[Viewer]] = {}  # fault kind → viewers of its streams
        self.sampler: Sampler | None = None

    # -- set-up ------------------------------------------------------------------------

    async def start(self) -> None:
        a = self.args
        self.apis = [self.cluster.api(f"api-{i + 1}") for i in range(2)]
        for i in range(2):
            self.cluster.worker(f"worker-{i + 1}")
        for i in range(a.nodes):
            self.cluster.node(f"drill-node-{i}")
        progress(f"2 APIs, 2 workers, {a.nodes} media nodes (capacity {a.capacity}) up")
        self.sampler = Sampler(self.cluster, self.apis[0].url, self.ports, a.period)
        self.sampler.start()
        self.clients = [VasClient(api.url, "admin", ADMIN_SECRET) for api in self.apis]
        cameras = []
        for _ in range(a.cameras):
            camera = TestCamera(LIGHT)
            await asyncio.to_thread(camera.start)
            cameras.append(camera)
        progress(f"{a.cameras} cameras up")
        gate = asyncio.Semaphore(2)
        started = time.monotonic()
        await asyncio.gather(*(self._start_stream(i, c, gate) for i, c in enumerate(cameras)))
        progress(f"{a.cameras} streams started through the APIs in "
                 f"{time.monotonic() - started:.1f} s")
        await self._until_all_live(60)

    async def _start_stream(self, i: int, camera: TestCamera, gate: asyncio.Semaphore) -> None:
        client = self.clients[i % 2]
        async with gate:
            device = await client.json("POST", "/api/v1/devices", json={
                "name": f"drill-{i}", "rtsp_url": camera.url})
            for attempt in range(3):  # a loaded machine may answer 503: try again, as a client
                try:
                    answer = await client.json(
                        "POST", f"/api/v1/devices/{device['id']}/start-stream")
                    break
                except VasError as exc:
                    if exc.status != 503 or attempt == 2:
                        raise
                    progress(f"camera {i}: start-stream answered 503, trying again")
        sid = str(answer["v2_stream_id"])
        self.cameras[sid] = camera
        self.ports[sid] = camera.port

    async def _until_all_live(self, seconds: float) -> dict[str, dict[str, Any]]:
        end = time.monotonic() + seconds
        while True:
            self._check()
            rows = await self.cluster.streams()
            live = [r for r in rows.values() if r["state"] == "LIVE" and r["node_id"]]
            if len(live) == len(self.cameras) or time.monotonic() > end:
                return rows
            await asyncio.sleep(0.2)

    def _check(self) -> None:
        if self.sampler is not None:
            self.sampler.check()

    async def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._check()
            await asyncio.sleep(min(0.5, max(0.0, end - time.monotonic())))

    def show(self, label: str) -> None:
        assert self.sampler is not None
        if not self.sampler.points:
            progress(f"{label}: no sample yet")
            return
        p = self.sampler.points[-1]
        queues = {q: int(d) for q, d in p.queues.items() if d}
        progress(f"{label}: /metrics (sampled {time.monotonic() - p.t:.1f} s ago) LIVE "
                 f"{p.live}, nodes alive {p.alive}, nodes' own streams {p.nodes}, queues not "
                 f"empty {queues or 'none'}")

    # -- the faults --------------------------------------------------------------------

    async def fault(self, kind: signal.Signals, victim: Member) -> Fault:
        rows = await self.cluster.streams()
        theirs = [sid for sid, r in rows.items() if r["node_id"] == victim.name]
        others = {n.name for n in self.cluster.nodes() if n is not victim}
        used = sum(1 for r in rows.values() if r["node_id"] in others)
        fault = Fault(kind.name, victim.name, 0.0, theirs,
                      seats=self.args.capacity * len(others) - used, uptime=uptime())
        watched = [v for v in self.viewers if v.stream_id in theirs]
        self.watched[kind.name] = watched
        fault.signalled, since_wall = time.monotonic(), datetime.now(UTC)
        for viewer in watched:
            viewer.since = fault.signalled
        victim.process.proc.send_signal(kind)
        progress(f"{kind.name} {victim.name} ({len(theirs)} streams, {fault.seats} free seats "
                 f"elsewhere, {len(watched)} viewers)")
        exited = asyncio.ensure_future(asyncio.to_thread(victim.process.proc.wait, 60))
        restart: asyncio.Future[None] | None = None
        while True:
            self._check()
            now = time.monotonic()
            if restart is None and self._restart_due(fault, now):
                restart = asyncio.ensure_future(self._restart(victim, fault, exited))
            await self._note_back(fault, since_wall)
            if restart is not None and restart.done():
                if len(fault.back) == len(theirs) or restart.exception() is not None:
                    break
                assert fault.restart_began is not None
                if now - fault.restart_began > WATCH_AFTER_RESTART_S:
                    break
            await asyncio.sleep(0.2)
        await restart
        fault.exit_code = await exited
        await self._wait(8)  # viewers re-attach, nodes report their load
        fault.ended = time.monotonic()
        self.show(f"after {kind.name}")
        return fault

    def _restart_due(self, fault: Fault, now: float) -> bool:
        """The StatefulSet's restart of the node: `--restart-after` seconds after the signal,
        or by default once every stream with a seat has moved, at the latest 20 s after."""
        after = now - fault.signalled
        if self.args.restart_after is not None:
            return after >= self.args.restart_after
        return (len(fault.moved()) >= min(len(fault.streams), fault.seats)
                or after >= AUTO_RESTART_S)

    async def _restart(self, victim: Member, fault: Fault, exited: asyncio.Future[int]) -> None:
        await exited  # a pod's replacement starts once the old one has ended
        fault.restart_began = time.monotonic()
        progress(f"{victim.name} restarting under the same VAS_NODE_ID "
                 f"(+{fault.restart_began - fault.signalled:.1f} s)")
        await asyncio.to_thread(self.cluster.restart, victim)  # blocks until "registered"
        fault.registered_after = time.monotonic() - fault.restart_began
        progress(f"{victim.name} registered {fault.registered_after:.1f} s after its start")

    async def _note_back(self, fault: Fault, since_wall: datetime) -> None:
        """Note each of the fault's streams that is LIVE again: a LIVE written after the
        signal (not the row's stale LIVE of the old node), on whichever node."""
        rows = await self.cluster.streams()
        now = time.monotonic()
        for sid in fault.streams:
            row = rows[sid]
            if (sid not in fault.back and row["state"] == "LIVE" and row["node_id"]
                    and row["updated_at"] > since_wall):
                # The row's own time of the write that made it LIVE (or of a later write:
                # never earlier), not when this loop, which shares its turn with the viewers'
                # decoding, happened to look.
                written = (row["updated_at"] - since_wall).total_seconds()
                fault.back[sid] = (fault.signalled + min(written, now - fault.signalled),
                                   row["node_id"])
                for viewer in self.viewers:
                    if viewer.stream_id == sid:
                        viewer.moved.set()

    # -- the run -----------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.start()
            ids = list(self.cameras)
            step = max(1, len(ids) // max(1, self.args.viewers))
            for i in range(self.args.viewers):
                self.viewers.append(Viewer(self.clients[i % 2], ids[(i * step) % len(ids)]))
            await self._wait(10)
            self.show("steady")
            nodes = self.cluster.nodes()
            rows = await self.cluster.streams()
            load = {n.name: sum(1 for r in rows.values() if r["node_id"] == n.name) for n in nodes}
            first = max(nodes, key=lambda n: load[n.name])
            self.faults.append(await self.fault(signal.SIGKILL, first))
            rows = await self._until_all_live(30)
            others = [n for n in nodes if n is not first]
            load = {n.name: sum(1 for r in rows.values() if r["node_id"] == n.name) for n in others}
            second = max(others, key=lambda n: load[n.name])
            self.faults.append(await self.fault(signal.SIGTERM, second))
            await self._until_all_live(30)
            await self._wait(3)
            if self.sampler is not None:
                self.sampler.stop()  # raises if it failed
        finally:
            if self.sampler is not None:
                self.sampler.halt()
            for viewer in self.viewers:
                viewer.task.cancel()
            # A viewer's clean-up (a DELETE, aiortc's transports) must not hold the report.
            if self.viewers:
                await asyncio.wait([v.task for v in self.viewers], timeout=15)
            await self.cluster.disconnect()

    def close(self) -> None:
        for camera in self.cameras.values():
            camera.stop()
        self.cluster.close()
        if self.args.logs:  # each process's log, for the timestamps of a hand-over
            logs = Path(self.args.logs)
            logs.mkdir(parents=True, exist_ok=True)
            for member in self.cluster.members:
                lines = [*member.earlier, *member.process.lines]
                (logs / f"{member.name}.log").write_text("\n".join(lines) + "\n")

    def write_timeline(self, path: str) -> None:
        """Every sample and fault as JSON (times in seconds from the first sample)."""
        assert self.sampler is not None
        points = self.sampler.points
        zero = points[0].t if points else 0.0
        data = {"samples": [{**asdict(p), "t": p.t - zero} for p in points],
                "faults": [{"kind": f.kind, "node": f.node, "signalled": f.signalled - zero,
                            "streams": f.streams, "seats": f.seats,
                            "back": {s: [t - zero, n] for s, (t, n) in f.back.items()},
                            "restart_began": None if f.restart_began is None
                            else f.restart_began - zero,
                            "registered_after": f.registered_after} for f in self.faults]}
        Path(path).write_text(json.dumps(data, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description="The full scale-out drill (docs/scale-out.md).")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--capacity", type=int, default=12)
    parser.add_argument("--cameras", type=int, default=40)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--restart-after", type=float, metavar="SECONDS",
                        help="restart a signalled node this long after the signal (the "
                        "kubelet's delay); default: once every stream with a seat elsewhere "
                        f"is LIVE there, at the latest {AUTO_RESTART_S:g} s after the signal")
    parser.add_argument("--period", type=float, default=1.0,
                        help="seconds between two samples of /metrics, rows and connections")
    parser.add_argument("--step", type=float, default=1.0,
                        help="seconds between two rows of the printed fault timelines (default: "
                        "every sample)")
    parser.add_argument("--timeline", metavar="FILE", help="write every sample here (JSON)")
    parser.add_argument("--logs", help="write each process's log into this directory")
    args = parser.parse_args()
    print(f"scale drill {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, run {uuid.uuid4().hex[:6]}, "
          f"commit {commit()}\nmachine: {machine()}\nbefore: {uptime()}\nsize: 2 APIs, "
          f"2 workers, {args.nodes} nodes x {args.capacity}, {args.cameras} cameras, "
          f"{args.viewers} viewers; restart after: "
          f"{'auto' if args.restart_after is None else f'{args.restart_after:g} s'}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vas-scale-drill-") as workdir:
        # The cluster's database is made and dropped outside the drill's event loop.
        drill = Drill(args, Cluster(Path(workdir), args.capacity))
        try:
            asyncio.run(drill.run())
            assert drill.sampler is not None
            code = report(drill.faults, drill.watched, drill.viewers, drill.sampler,
                          [n.name for n in drill.cluster.nodes()], args.step)
        finally:
            if args.timeline and drill.sampler is not None:
                drill.write_timeline(args.timeline)
            drill.close()
    print(f"after: {uptime()}", flush=True)
    return code


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # the drill failed (a sampler error among others): say so, and exit
        traceback.print_exc()
        code = 2
    sys.stdout.flush()
    # Viewers whose aiortc receiver never stops (their RTCP task waits forever) leave threads
    # behind that would keep the interpreter from exiting; everything VAS is stopped by now.
    os._exit(code)
