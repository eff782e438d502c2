"""The scale drill's observer (benchmarks/scale_drill.py): every second it reads the first
API's `/metrics`, every media node's own `/metrics`, the stream rows, the test cameras' RTSP
connections (one read of /proc/net/tcp), CPU and memory of every VAS process and the load
average.

It runs in a thread with an event loop of its own: the drill's viewers decode video on the
main loop and its restarts block, and neither may stall the samples. A source that does not
answer (a killed node) is written into the sample's `errors`; anything else that goes wrong
ends the thread, and `check()` raises it in the drill."""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.common import progress

if TYPE_CHECKING:
    from benchmarks.scale_cluster import Cluster

TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
ESTABLISHED = "01"


class SamplerFailed(RuntimeError):
    """The drill's sampler thread ended with an error: its figures are incomplete."""


@dataclass
class Point:
    """One sample. None: the source did not answer (see `errors`)."""

    t: float  # time.monotonic() when the sample began
    wall: str  # UTC, HH:MM:SS.ss
    load: float  # 1-minute load average
    live: float | None = None  # API: vas_streams{state="LIVE"}
    alive: float | None = None  # API: vas_media_nodes (heartbeat within the lease)
    node_load: float | None = None  # API: vas_media_node_streams (sum over the live nodes)
    queues: dict[str, float] = field(default_factory=dict)  # API: vas_queue_messages
    nodes: dict[str, float | None] = field(default_factory=dict)  # node's vas_node_streams
    rows: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # stream → state, node
    connections: dict[str, int] = field(default_factory=dict)  # stream → RTSP connections
    took: float = 0.0  # seconds the sample took
    errors: list[str] = field(default_factory=list)
    # stream → the processes holding its camera's connections, when there were two or more
    holders: dict[str, list[str]] = field(default_factory=dict)


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample of a Prometheus exposition."""
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text)
            for s in f.samples]


def count_established(tables: Iterable[str], ports: Iterable[int],
                      inodes: dict[int, list[str]] | None = None) -> dict[int, int]:
    """ESTABLISHED TCP connections to each of `ports` (the remote side) in the text of
    /proc/net/tcp-like tables: a test camera's port, so its ingests. `inodes`, when given,
    gets each port's sockets' inodes."""
    counts = dict.fromkeys(ports, 0)
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != ESTABLISHED:
                continue
            port = int(fields[2].rsplit(":", 1)[1], 16)
            if port in counts:
                counts[port] += 1
                if inodes is not None and len(fields) > 9:
                    inodes.setdefault(port, []).append(fields[9])
    return counts


def socket_holders(inodes: Iterable[str]) -> list[str]:
    """"pid command" of the processes holding these sockets (read only when a camera has
    two connections: a scan of every process's descriptors)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in wanted for fd in (proc / "fd").iterdir()):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{proc.name} {command.strip()[:120]}")
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


def read_tcp_tables() -> list[str]:
    tables = []
    for path in TCP_TABLES:
        try:
            tables.append(Path(path).read_text())
        except OSError:  # no IPv6 on this machine
            continue
    return tables


class Sampler:
    """`start()`, then `points` grows by one a `period`; `check()` raises if the thread
    failed; `stop()` ends it (and checks)."""

    def __init__(self, cluster: Cluster, api_url: str, cameras: dict[str, int],
                 period: float = 1.0) -> None:
        self.cluster, self.api_url, self.period = cluster, api_url, period
        self.cameras = cameras  # stream id → camera port; the drill adds to it as it starts
        self.points: list[Point] = []
        self.usage: dict[str, tuple[float, float, float]] = {}  # CPU s, wall s, RSS MiB
        self.peak_rss: dict[str, float] = defaultdict(float)
        self.missed = 0  # periods that passed without a sample (the previous one overran)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="scale-drill-sampler",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def check(self) -> None:
        if self.error is not None:
            raise SamplerFailed(f"the sampler failed: {self.error!r}") from self.error
        if not self._thread.is_alive() and not self._stop.is_set():
            raise SamplerFailed("the sampler thread ended")

    def stop(self) -> None:
        self.halt()
        self.check()

    def halt(self) -> None:
        """End the thread without raising what it failed with (a drill already failing)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10 * self.period + 10)

    def _main(self) -> None:
        try:
            asyncio.run(self._loop())
        except BaseException as exc:  # handed to the drill by check()
            self.error = exc
            progress("the sampler failed:\n" + "".join(traceback.format_exception(exc)))

    async def _loop(self) -> None:
        conn = await asyncpg.connect(self.cluster.database_url)
        try:
            # A scrape may take up to most of a period; a node that does not answer by then
            # counts as not answering.
            async with httpx.AsyncClient(timeout=0.8 * self.period) as http:
                due = time.monotonic()
                while not self._stop.is_set():
                    self.points.append(await self._once(http, conn))
                    due += self.period
                    now = time.monotonic()
                    if now > due:  # overran: the next sample at the next whole period
                        skipped = int((now - due) / self.period) + 1
                        self.missed += skipped
                        due += skipped * self.period
                    await asyncio.sleep(due - time.monotonic())
        finally:
            await conn.close()

    async def _once(self, http: httpx.AsyncClient, conn: asyncpg.Connection) -> Point:
        began = time.monotonic()
        point = Point(t=began, wall=datetime.now(UTC).strftime("%H:%M:%S.%f")[:-4],
                      load=os.getloadavg()[0])
        nodes = list(self.cluster.nodes())
        texts = await asyncio.gather(
            self._scrape(http, f"{self.api_url}/metrics", "api", point),
            *(self._scrape(http, f"http://127.0.0.1:{n.metrics_port}/metrics", n.name, point)
              for n in nodes))
        if texts[0] is not None:
            for name, labels, value in samples(texts[0]):
                if name == "vas_queue_messages":
                    point.queues[labels["queue"]] = value
                elif name == "vas_streams" and labels.get("state") == "LIVE":
                    point.live = value
                elif name == "vas_media_nodes":
                    point.alive = value
                elif name == "vas_media_node_streams":
                    point.node_load = value
        for node, text in zip(nodes, texts[1:], strict=True):
            own = {} if text is None else {n: v for n, labels, v in samples(text) if not labels}
            point.nodes[node.name] = own.get("vas_node_streams")
            if text is not None and point.nodes[node.name] is None:
                point.errors.append(f"{node.name}: no vas_node_streams")
        try:  # the rows first: a stream LIVE in them had its connection before /proc is read
            rows = await conn.fetch("SELECT id, node_id, state FROM vas_stream")
            point.rows = {str(r["id"]): (r["state"], r["node_id"]) for r in rows}
        except (asyncpg.PostgresError, OSError) as exc:
            point.errors.append(f"database: {exc!r}")
        cameras = dict(self.cameras)
        inodes: dict[int, list[str]] = {}
        counts = count_established(read_tcp_tables(), cameras.values(), inodes)
        point.connections = {sid: counts[port] for sid, port in cameras.items()}
        for sid, port in cameras.items():
            if counts[port] > 1:
                point.holders[sid] = socket_holders(inodes[port])
        for member in list(self.cluster.members):
            self.usage[member.name] = member.usage()
            self.peak_rss[member.name] = max(self.peak_rss[member.name],
                                             self.usage[member.name][2])
        point.took = time.monotonic() - began
        return point

    @staticmethod
    async def _scrape(http: httpx.AsyncClient, url: str, name: str, point: Point) -> str | None:
        try:
            answer = await http.get(url)
            answer.raise_for_status()
            return answer.text
        except httpx.HTTPError as exc:
            point.errors.append(f"{name}: {type(exc).__name__}")
            return None
