"""The full scale-out drill: many media nodes, cameras and viewers; one node killed, one
stopped as Kubernetes stops a pod. Figures for docs/scale-out.md.

    .venv/bin/python -m benchmarks.scale_drill        # 2 APIs, 2 workers, 4 nodes x 12,
                                                      # 40 cameras, 20 viewers
    .venv/bin/python -m benchmarks.scale_drill --nodes 3 --cameras 9 --viewers 4

Real PostgreSQL (a fresh database) and Redis (a namespace of its own), `vas api`, `vas
worker` and `vas media-node` as processes with the default heartbeat and lease, test
cameras of tests/camera (320x240, 10 fps), every stream started through the APIs, WebRTC
viewers with the Python consumer of vas_client. Then:

1. SIGKILL the node that runs most streams: each of its streams' gap until it is LIVE on
   another node (the row LIVE again after the signal); streams no survivor has room for wait
   for the node to come back under the same VAS_NODE_ID, as its StatefulSet pod would.
2. SIGTERM another node: the same, with the hand-over instead of lease expiry.
3. Viewers of moved streams re-attach (after their transport closed, or when they see the
   stream moved) and must get video; every camera ends with exactly one RTSP connection and
   never has two; /metrics of the API (queue depths, streams) and of each node (its
   streams) are read every second; CPU and memory per process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import ADMIN_SECRET, percentile, progress
from benchmarks.scale_cluster import Cluster, Member, samples
from tests.camera import CameraProfile, TestCamera
from tests.vas_fixtures import rtsp_connections
from vas_client import StreamConsumer, VasClient
from vas_client.http import VasError

LIGHT = CameraProfile(width=320, height=240, fps=10, gop=10)


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
        self.viewers: list[Viewer] = []
        self.timeline: list[dict[str, Any]] = []
        self.max_connections: dict[str, int] = defaultdict(int)
        self.usage: dict[str, tuple[float, float, float]] = {}
        self.peak_rss: dict[str, float] = defaultdict(float)

    # -- set-up ------------------------------------------------------------------------

    async def start(self) -> None:
        a = self.args
        self.apis = [self.cluster.api(f"api-{i + 1}") for i in range(2)]
        for i in range(2):
            self.cluster.worker(f"worker-{i + 1}")
        for i in range(a.nodes):
            self.cluster.node(f"drill-node-{i}")
        progress(f"2 APIs, 2 workers, {a.nodes} media nodes (capacity {a.capacity}) up")
        self.clients = [VasClient(api.url, "admin", ADMIN_SECRET) for api in self.apis]
        cameras = []
        for _ in range(a.cameras):
            camera = TestCamera(LIGHT)
            camera.start()
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
        self.cameras[str(answer["v2_stream_id"])] = camera

    async def _until_all_live(self, seconds: float) -> dict[str, dict[str, Any]]:
        end = time.monotonic() + seconds
        while True:
            rows = await self.cluster.streams()
            live = [r for r in rows.values() if r["state"] == "LIVE" and r["node_id"]]
            if len(live) == len(self.cameras) or time.monotonic() > end:
                return rows
            await asyncio.sleep(0.2)

    # -- observation -----------------------------------------------------------------

    async def sample(self) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                await self._sample_once(http)
                await asyncio.sleep(1)

    async def _sample_once(self, http: httpx.AsyncClient) -> None:
        point: dict[str, Any] = {"t": time.monotonic(), "queues": {}, "nodes": {}}
        with contextlib.suppress(httpx.HTTPError):
            text = (await http.get(f"{self.apis[0].url}/metrics")).text
            for name, labels, value in samples(text):
                if name == "vas_queue_messages":
                    point["queues"][labels["queue"]] = value
                elif name == "vas_streams" and labels.get("state") == "LIVE":
                    point["live"] = value
                elif name == "vas_media_nodes":
                    point["alive"] = value
        for node in self.cluster.nodes():
            with contextlib.suppress(httpx.HTTPError):
                text = (await http.get(f"http://127.0.0.1:{node.metrics_port}/metrics")).text
                point["nodes"][node.name] = next(
                    v for n, _, v in samples(text) if n == "vas_node_streams")
        for sid, camera in self.cameras.items():
            self.max_connections[sid] = max(self.max_connections[sid],
                                            rtsp_connections(camera.port))
        for member in self.cluster.members:
            self.usage[member.name] = member.usage()
            self.peak_rss[member.name] = max(self.peak_rss[member.name], self.usage[member.name][2])
        self.timeline.append(point)

    def show(self, label: str) -> None:
        point = self.timeline[-1] if self.timeline else {}
        queues = {q: int(d) for q, d in point.get("queues", {}).items() if d}
        progress(f"{label}: /metrics LIVE {point.get('live')}, nodes alive "
                 f"{point.get('alive')}, per node {dict(point.get('nodes', {}))}, "
                 f"queues not empty {queues or 'none'}")

    # -- the faults --------------------------------------------------------------------

    async def fault(self, kind: signal.Signals, victim: Member) -> dict[str, Any]:
        rows = await self.cluster.streams()
        theirs = [sid for sid, r in rows.items() if r["node_id"] == victim.name]
        watched = [v for v in self.viewers if v.stream_id in theirs]
        signalled_at, signalled_wall = time.monotonic(), datetime.now(UTC)
        for viewer in watched:
            viewer.since = signalled_at
        victim.process.proc.send_signal(kind)
        progress(f"{kind.name} {victim.name} ({len(theirs)} streams, {len(watched)} viewers)")
        # Long enough for lease expiry after a kill (10 s + a heartbeat by default).
        window = 25 if kind is signal.SIGKILL else 10
        gaps = await self._moved(theirs, victim.name, signalled_at, signalled_wall, window)
        code = await asyncio.to_thread(victim.process.proc.wait, 60)
        stranded = [s for s in theirs if s not in gaps]
        self.show(f"{kind.name} +{time.monotonic() - signalled_at:.0f} s")
        restarted_at = time.monotonic()
        self.cluster.restart(victim)  # its StatefulSet pod comes back under the same id
        registered = time.monotonic() - restarted_at
        back = await self._moved(stranded, None, signalled_at, signalled_wall,
                                 time.monotonic() - signalled_at + 40)
        back = {s: t - (restarted_at - signalled_at) for s, t in back.items()}
        progress(f"{victim.name} restarted ({registered:.1f} s to register); "
                 f"{len(back)}/{len(stranded)} streams without room back")
        await asyncio.sleep(8)  # viewers re-attach, nodes report their load
        self.show(f"after {kind.name}")
        return {"kind": kind.name, "node": victim.name, "exit": code, "streams": len(theirs),
                "gaps": sorted(gaps.values()), "stranded": len(stranded),
                "stranded_back": sorted(back.values()), "viewers": watched}

    async def _moved(self, stream_ids: list[str], old: str | None, since: float,
                     since_wall: datetime, seconds: float) -> dict[str, float]:
        """Seconds from the signal until each stream was LIVE again on a node other than
        `old` (a state written after the signal, so not the row's stale LIVE)."""
        gaps: dict[str, float] = {}
        while len(gaps) < len(stream_ids) and time.monotonic() - since < seconds:
            rows = await self.cluster.streams()
            for sid in stream_ids:
                row = rows[sid]
                if (sid not in gaps and row["state"] == "LIVE" and row["node_id"]
                        and row["node_id"] != old and row["updated_at"] > since_wall):
                    # The row's own time of the write that made it LIVE on its new node
                    # (or of a later write: never earlier), not when this loop, which
                    # shares its turn with the viewers' decoding, happened to look.
                    written = (row["updated_at"] - since_wall).total_seconds()
                    gaps[sid] = min(written, time.monotonic() - since)
                    for viewer in self.viewers:
                        if viewer.stream_id == sid:
                            viewer.moved.set()
            await asyncio.sleep(0.1)
        return gaps

    # -- the run -----------------------------------------------------------------------

    async def run(self) -> list[dict[str, Any]]:
        await self.start()
        sampler = asyncio.ensure_future(self.sample())
        try:
            ids = list(self.cameras)
            step = max(1, len(ids) // max(1, self.args.viewers))
            for i in range(self.args.viewers):
                self.viewers.append(Viewer(self.clients[i % 2], ids[(i * step) % len(ids)]))
            await asyncio.sleep(10)
            self.show("steady")
            results = []
            nodes = self.cluster.nodes()
            rows = await self.cluster.streams()
            load = {n.name: sum(1 for r in rows.values() if r["node_id"] == n.name) for n in nodes}
            first = max(nodes, key=lambda n: load[n.name])
            results.append(await self.fault(signal.SIGKILL, first))
            rows = await self._until_all_live(30)
            others = [n for n in nodes if n is not first]
            load = {n.name: sum(1 for r in rows.values() if r["node_id"] == n.name) for n in others}
            second = max(others, key=lambda n: load[n.name])
            results.append(await self.fault(signal.SIGTERM, second))
            await self._until_all_live(30)
            await asyncio.sleep(3)
            await self._sample_once(httpx.AsyncClient(timeout=5))
            return results
        finally:
            sampler.cancel()
            for viewer in self.viewers:
                viewer.task.cancel()
            # A viewer's clean-up (a DELETE, aiortc's transports) must not hold the report.
            await asyncio.wait([v.task for v in self.viewers] or [sampler], timeout=15)

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


def _seconds(values: list[float]) -> str:
    if not values:
        return "none"
    return (f"p50 {percentile(values, 50):.2f} s, max {max(values):.2f} s "
            f"(each: {', '.join(f'{v:.2f}' for v in values)})")


async def _report(drill: Drill, results: list[dict[str, Any]]) -> int:
    ok = True
    for r in results:
        print(f"\n## {r['kind']} {r['node']} (exit {r['exit']}): {r['streams']} streams")
        print(f"moved to other nodes: {len(r['gaps'])}: {_seconds(r['gaps'])}")
        print(f"without room on the survivors: {r['stranded']}; LIVE again after the node was "
              f"started again under the same VAS_NODE_ID (from that start): "
              f"{_seconds(r['stranded_back'])}")
        viewers = r["viewers"]
        back = [v.back_after[0] for v in viewers if v.back_after]
        print(f"viewers of its streams: {len(viewers)}, transports closed by the node: "
              f"{sum(v.ended for v in viewers)}, video again after re-attaching: "
              f"{len(back)}/{len(viewers)}: {_seconds(sorted(back))}")
        ok &= len(back) == len(viewers) and len(r["gaps"]) + len(r["stranded_back"]) == r["streams"]
    rows = await drill.cluster.streams()
    live = sum(1 for r in rows.values() if r["state"] == "LIVE")
    now = {sid: rtsp_connections(c.port) for sid, c in drill.cameras.items()}
    doubled = {sid: n for sid, n in drill.max_connections.items() if n > 1}
    print(f"\nstreams LIVE at the end: {live}/{len(rows)}; cameras with one RTSP connection now: "
          f"{sum(1 for n in now.values() if n == 1)}/{len(now)}; ever two or more: "
          f"{len(doubled)}")
    print(f"viewer frames: {sum(v.frames for v in drill.viewers)} over {len(drill.viewers)} "
          "viewers; every viewer had video: "
          f"{all(v.frames > 0 for v in drill.viewers)}")
    queues = defaultdict(float)
    for point in drill.timeline:
        for queue, depth in point["queues"].items():
            queues[queue] = max(queues[queue], depth)
    print(f"/metrics read {len(drill.timeline)} times; deepest queues: "
          f"{ {q: int(d) for q, d in queues.items() if d} or 'all empty'}")
    print("\n| process | CPU % of a core (mean) | RSS MiB (end / peak) |\n|---|---|---|")
    for name, (cpu, wall, rss) in drill.usage.items():
        print(f"| {name} | {100 * cpu / wall:.1f} | {rss:.0f} / {drill.peak_rss[name]:.0f} |")
    ok &= live == len(rows) and not doubled and all(n == 1 for n in now.values())
    return 0 if ok else 1


async def main_async(drill: Drill) -> int:
    return await _report(drill, await drill.run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--capacity", type=int, default=12)
    parser.add_argument("--cameras", type=int, default=40)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--logs", help="write each process's log into this directory")
    args = parser.parse_args()
    print(f"scale drill {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, run {uuid.uuid4().hex[:6]}")
    with tempfile.TemporaryDirectory(prefix="vas-scale-drill-") as workdir:
        # The cluster's database is made and dropped outside the drill's event loop.
        drill = Drill(args, Cluster(Path(workdir), args.capacity))
        try:
            return asyncio.run(main_async(drill))
        finally:
            drill.close()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Viewers whose aiortc receiver never stops (their RTCP task waits forever) leave threads
    # behind that would keep the interpreter from exiting; everything VAS is stopped by now.
    os._exit(code)
