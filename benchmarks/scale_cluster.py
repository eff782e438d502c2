"""A VAS cluster of separate processes on one machine, for benchmarks/scale_drill.py: API
processes, workers and media nodes on a fresh PostgreSQL database and a Redis namespace of
their own, each serving its metrics; CPU and memory per process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.common import ADMIN_SECRET, cpu_seconds
from tests.conftest import REDIS_URL, _flush_namespace, _new_database
from tests.e2e.processes import VasProcess, clean_env, free_port


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Member:
    """One VAS process: its role, name, metrics port and CPU accounting."""

    role: str
    name: str
    process: VasProcess
    metrics_port: int
    url: str | None = None
    cpu_at_start: float = 0.0
    last_cpu: float = 0.0  # the newest reading (a killed process can no longer be read)
    started_at: float = field(default_factory=time.monotonic)
    lives: list[tuple[float, float]] = field(default_factory=list)  # (cpu s, wall s) of ended runs
    earlier: list[str] = field(default_factory=list)  # the log of its ended runs

    @property
    def pid(self) -> int:
        return self.process.proc.pid

    def usage(self) -> tuple[float, float, float]:
        """CPU seconds, wall seconds (all its lives) and RSS MiB now."""
        proc, rss = self.process.proc, 0.0
        # Never read a reaped process's pid: this machine reuses pids within a run, and the
        # pid's new owner (any busy process or thread) would be counted as this one.
        if proc.returncode is None:
            try:
                cpu, rss = cpu_seconds(proc.pid), rss_mib(proc.pid)
            except (OSError, IndexError):  # gone between the check and the read
                cpu, rss = self.last_cpu, 0.0
            if proc.returncode is None:  # still ours after the read
                self.last_cpu = cpu
            else:
                rss = 0.0
        cpu = sum(c for c, _ in self.lives) + self.last_cpu - self.cpu_at_start
        wall = sum(w for _, w in self.lives) + time.monotonic() - self.started_at
        return cpu, wall, rss


class Cluster:
    """Start with `Cluster(workdir, capacity)`; `close()` stops everything it started."""

    def __init__(self, workdir: Path, capacity: int) -> None:
        self._database = _new_database()
        self.database_url = next(self._database)
        self.namespace = f"vas-drill-{uuid.uuid4().hex[:8]}"
        self.env = {
            "DATABASE_URL": self.database_url, "REDIS_URL": REDIS_URL,
            "VAS_REDIS_NAMESPACE": self.namespace, "VAS_DATA_DIR": str(workdir / "data"),
            "VAS_ADMIN_CLIENT_ID": "admin", "VAS_ADMIN_CLIENT_SECRET": ADMIN_SECRET,
            "VAS_NODE_CAPACITY": str(capacity), "VAS_LOG_LEVEL": "INFO",
        }
        self.workdir = workdir
        self.members: list[Member] = []
        self._conn: asyncpg.Connection | None = None

    def _start(self, role: str, name: str, ready: str, **extra: str) -> Member:
        port = free_port()
        env = clean_env(**self.env, VAS_METRICS_PORT=str(port), **extra)
        member = Member(role, name, VasProcess(role, env, self.workdir), port)
        deadline = time.monotonic() + 60
        while ready not in member.process.output:
            if member.process.proc.poll() is not None or time.monotonic() > deadline:
                if member.process.proc.poll() is None:
                    member.process.interrupt()
                raise RuntimeError(f"{name} did not start:\n{member.process.output[-3000:]}")
            time.sleep(0.05)
        member.cpu_at_start = member.last_cpu = cpu_seconds(member.pid)
        return member

    def api(self, name: str) -> Member:
        port = free_port()
        member = self._start("api", name, "Application startup complete", VAS_PORT=str(port))
        member.url = f"http://127.0.0.1:{port}"  # not ready before media nodes run
        self.members.append(member)
        return member

    def worker(self, name: str) -> Member:
        member = self._start("worker", name, "serving queues")
        self.members.append(member)
        return member

    def node(self, node_id: str) -> Member:
        """A media node with a stable id (as a StatefulSet pod)."""
        member = self._start("media-node", node_id, "registered", VAS_NODE_ID=node_id)
        self.members.append(member)
        return member

    def restart(self, member: Member) -> None:
        """Start a stopped media node again under the same id, keeping its CPU account."""
        member.lives.append((member.last_cpu - member.cpu_at_start,
                             time.monotonic() - member.started_at))
        member.earlier += [*member.process.lines, "---- restarted ----"]
        fresh = self._start("media-node", member.name, "registered", VAS_NODE_ID=member.name)
        # The new account first, the process last: the drill's sampler reads them meanwhile.
        member.cpu_at_start = member.last_cpu = fresh.cpu_at_start
        member.started_at = time.monotonic()
        member.process, member.metrics_port = fresh.process, fresh.metrics_port

    def nodes(self) -> list[Member]:
        return [m for m in self.members if m.role == "media-node"]

    def running(self) -> Iterator[Member]:
        return (m for m in self.members if m.process.proc.poll() is None)

    async def streams(self) -> dict[str, dict[str, Any]]:
        """Every stream row (id → node_id, state, updated_at), read from the database on one
        connection kept for the caller's event loop (the drill polls several times a second;
        a connection each time would cost a PostgreSQL backend each time)."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.database_url)
        rows = await self._conn.fetch("SELECT id, node_id, state, updated_at FROM vas_stream")
        return {str(r["id"]): dict(r) for r in rows}

    async def disconnect(self) -> None:
        """Close the connection of `streams()` (before `close()` drops the database)."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def close(self) -> None:
        for member in self.members:
            if member.process.proc.poll() is None:
                member.process.interrupt()
        _flush_namespace(REDIS_URL, self.namespace)
        next(self._database, None)
