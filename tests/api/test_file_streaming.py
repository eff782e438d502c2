"""Downloads stream: a large clip, whole or as `Range: bytes=0-`, leaves the API's memory
flat (the body goes out in bounded chunks, never read whole)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.stream_states import StreamState
from core.streams import StreamService
from tests.camera import unused_port
from tests.conftest import bearer

CLIP_BYTES = 256 * 1024 * 1024  # a long clip; sparse on disk
FLAT_BYTES = 48 * 1024 * 1024  # far below the clip: reading it whole would show


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class PeakRss:
    """Samples a process's resident memory every few milliseconds while active."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss(self.pid))
            time.sleep(0.005)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def _ready_bookmark(app: Any, client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    device = await client.post("/api/v1/devices", json={"name": "cam",
                                                         "rtsp_url": "rtsp://192.0.2.1/s"})
    service = StreamService()
    stream, _ = await service.create(uuid.UUID(device.json()["id"]))
    for state in (StreamState.READY, StreamState.LIVE):
        stream = await service.transition(stream.id, state)
    bookmarks = app.state.services.bookmarks
    row = await bookmarks.create(stream.id, {"source": "live", "before_seconds": 5.0,
                                             "after_seconds": 5.0})
    path = bookmarks.files.clip(row.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(b"\x00\x00\x00\x18ftypmp42")
        fh.truncate(CLIP_BYTES)
    await bookmarks.ready(row.id, CLIP_BYTES)
    return str(row.id)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # memory, not the database
async def test_large_downloads_keep_the_api_memory_flat(
    app: Any, client: httpx.AsyncClient, admin_token: str, start_process: Callable[..., Any]
) -> None:
    headers = bearer(admin_token)
    bookmark = await _ready_bookmark(app, client, headers)
    port = unused_port()
    api = start_process("api", "Application startup complete", VAS_PORT=str(port))
    url = f"http://127.0.0.1:{port}/v2/bookmarks/{bookmark}/video"
    async with httpx.AsyncClient(timeout=60) as http:
        head = await http.get(url, headers={**headers, "Range": "bytes=0-15"})
        assert head.status_code == 206 and head.content[4:8] == b"ftyp"
        baseline = _rss(api.proc.pid)
        half = CLIP_BYTES // 2
        cases: list[tuple[dict[str, str], int]] = [
            ({}, CLIP_BYTES), ({"Range": "bytes=0-"}, CLIP_BYTES),
            ({"Range": f"bytes={half}-"}, CLIP_BYTES - half)]
        for extra, expected in cases:
            received = 0
            with PeakRss(api.proc.pid) as peak:
                async with http.stream("GET", url, headers={**headers, **extra}) as response:
                    assert response.status_code == (206 if extra else 200)
                    async for chunk in response.aiter_raw():
                        received += len(chunk)
            assert received == expected
            assert int(response.headers["content-length"]) == expected
            grew = peak.peak - baseline
            print(f"{extra or 'whole file'}: {received >> 20} MiB sent, RSS +{grew >> 20} MiB")
            assert grew < FLAT_BYTES, f"the API's RSS grew {grew >> 20} MiB for {extra}"
