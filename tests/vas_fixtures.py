"""VAS processes beside the in-process API: media nodes and workers as real `vas` processes on
the test's database, Redis namespace and data dir (registered by tests/conftest.py).

They run with the test's `settings_env`: the product's defaults unless a directory's conftest
shortens them (tests/streaming does, tests/defaults does not).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import VasProcess, clean_env


@pytest.fixture
def start_process(settings_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., VasProcess]]:
    """Start `vas <command>` with the test's settings (its output also written to `log` if
    given); every one is stopped after the test."""
    started: list[VasProcess] = []

    def start(command: str, ready_text: str, timeout: float = 90.0, log: Path | None = None,
              **extra_env: str) -> VasProcess:
        proc = VasProcess(command, clean_env(**settings_env, **extra_env), tmp_path, log)
        started.append(proc)
        deadline = time.monotonic() + timeout
        while ready_text not in proc.output:
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{command} did not start:\n{proc.output}")
            time.sleep(0.05)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.interrupt()


@pytest.fixture
def media_node(start_process: Callable[..., VasProcess]) -> VasProcess:
    return start_process("media-node", "registered")


@pytest.fixture
def worker(start_process: Callable[..., VasProcess]) -> VasProcess:
    return start_process("worker", "serving queues")


async def add_device(client: httpx.AsyncClient, url: str, **fields: Any) -> str:
    response = await client.post("/api/v1/devices", json={
        "name": f"cam-{uuid.uuid4().hex[:6]}", "rtsp_url": url, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def rtsp_connections(port: int) -> int:
    """ESTABLISHED TCP connections to 127.0.0.1:`port` (the ingests of a test camera)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


async def until(probe: Callable[[], Any], what: str, seconds: float) -> Any:
    """Poll the coroutine function `probe` until it returns something truthy, and return that
    (a condition with a generous bound, not a timing target)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")
