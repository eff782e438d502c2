"""Viewers for the fault drills: Python WebRTC consumers (tests/streaming/test_webrtc.py
covers the consumer itself) that keep watching through faults and re-attach as the guide's
"Stream Crash Recovery" says: when their transport died (the frames stop and VAS no longer
shows the consumer alive or their own ICE or DTLS failed, or the track ended), they attach a
new consumer while the stream is LIVE; a stream that is not LIVE is waited for, never
restarted. Every silence is described (`Viewer.silences`) for the drills' reports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.vas_fixtures import add_device
from vas_client import StreamConsumer, VasClient, VasError

SILENT_S = 3.0  # no frame this long while the stream is LIVE: look at the transport
LOOK_EVERY_S = 1.0  # then ask VAS about the stream and the consumer this often
UNKNOWN = "UNKNOWN"  # VAS did not answer: the consumer is taken as alive, the stream as not LIVE
ALIVE = ("NEW", "CONNECTING", "CONNECTED", UNKNOWN)
DEAD = {"failed", "closed"}  # local ICE, DTLS or peer-connection states of a dead transport


def in_process_client(client: httpx.AsyncClient, token: str) -> VasClient:
    """A VasClient on the test's in-process API (same database and Redis as the node)."""
    vas = VasClient("http://127.0.0.1", "admin", "unused")
    vas._http = client
    vas._access, vas._expires_at = token, time.monotonic() + 24 * 3600
    return vas


async def live_stream(client: httpx.AsyncClient, start_camera: Any) -> tuple[Any, str]:
    """A small test camera (320x240, 15 fps, 1 s GOP) started as a stream: (camera, id)."""
    camera = start_camera(width=320, height=240, fps=15, gop=15)
    device_id = await add_device(client, camera.url)
    started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=40)
    assert started.status_code == 200, started.text
    return camera, str(started.json()["v2_stream_id"])


def usage(pid: int) -> tuple[int, int, int]:
    """Threads, open file descriptors and RSS (bytes) of a process."""
    status = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    threads = int(status["Threads"])
    rss = int(status["VmRSS"].split()[0]) * 1024
    return threads, len(os.listdir(f"/proc/{pid}/fd")), rss


def slope(values: list[float]) -> float:
    """Least-squares change per sample."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    return num / sum((x - mean_x) ** 2 for x in range(n))


class Viewer:
    """One viewer in a background task: counts frames, re-attaches where its transport died,
    and describes every silence (`silences`, and `on_silence` as it happens): its own
    transport's state, the stream's and the consumer row's state as VAS shows them."""

    def __init__(self, vas: VasClient, stream_id: str, mode: str) -> None:
        self.vas, self.stream_id, self.mode = vas, stream_id, mode
        self.frames = 0
        self.last_frame = 0.0  # monotonic time of the last frame
        self.attached = 0  # consumers attached (1 + re-attaches)
        self.consumer: StreamConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.errors: list[str] = []
        self.silences: list[dict[str, Any]] = []
        self.on_silence: Callable[[dict[str, Any]], None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.consumer is not None:
            await self.consumer.close()

    async def frame_after(self, moment: float, seconds: float) -> float:
        """Seconds from `moment` until this viewer decoded a frame after it."""
        deadline = time.monotonic() + seconds
        while self.last_frame <= moment:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.mode} viewer: no frame within {seconds} s "
                                     f"(attached {self.attached} times, errors {self.errors[-3:]})")
            await asyncio.sleep(0.1)
        return self.last_frame - moment

    async def _stream_state(self) -> str:
        try:
            body = (await self.vas.request("GET", f"/v2/streams/{self.stream_id}")).json()
        except (httpx.HTTPError, VasError) as exc:  # the viewer keeps trying, as a player would
            self.errors.append(f"stream state: {exc!r}")
            return UNKNOWN
        return str(body.get("state"))

    async def _consumer_state(self) -> str:
        assert self.consumer is not None
        try:
            listed = (await self.vas.request(
                "GET", f"/v2/streams/{self.stream_id}/consumers")).json()
        except (httpx.HTTPError, VasError) as exc:
            self.errors.append(f"consumer state: {exc!r}")
            return UNKNOWN
        mine = [c for c in listed["consumers"] if c["id"] == self.consumer.consumer_id]
        return str(mine[0]["state"]) if mine else "GONE"

    async def _watch(self, consumer: StreamConsumer) -> None:
        async for _ in consumer.frames():
            self.frames += 1
            self.last_frame = time.monotonic()

    async def _describe(self, consumer: StreamConsumer, silent: float, row: str,
                        action: str, local: dict[str, Any] | None = None) -> None:
        event = {"t": time.time(), "mode": self.mode, "stream": self.stream_id,
                 "consumer": consumer.consumer_id, "silent_s": round(silent, 1), "row": row,
                 "action": action, "local": local or await consumer.transport_state()}
        self.silences.append(event)
        if self.on_silence is not None:
            self.on_silence(event)

    async def _run(self) -> None:
        while True:
            if await self._stream_state() != "LIVE":
                await asyncio.sleep(0.3)
                continue
            self.consumer = StreamConsumer(self.vas, self.stream_id, mode=self.mode,
                                           local_ip="127.0.0.1")
            try:
                await self.consumer.start()
            except Exception as exc:  # e.g. 409 if the camera dropped meanwhile
                self.errors.append(f"attach: {exc!r}")
                await self.consumer.close()
                await asyncio.sleep(0.5)
                continue
            self.attached += 1
            await self._watch_until_dead(self.consumer)
            await self.consumer.close()
            self.consumer = None

    async def _watch_until_dead(self, consumer: StreamConsumer) -> None:
        """Return once the consumer is dead: its track ended, or no frame for SILENT_S
        while the stream is LIVE and VAS no longer shows the consumer alive."""
        attached_at = time.monotonic()
        watching = asyncio.ensure_future(self._watch(consumer))
        described: str | None = None  # the states the current silence was described with
        next_look = 0.0
        try:
            while not watching.done():
                await asyncio.sleep(0.5)
                now = time.monotonic()
                silent = now - max(self.last_frame, attached_at)
                if silent < SILENT_S:
                    described = None
                    continue
                if now < next_look:
                    continue
                next_look = now + LOOK_EVERY_S
                if await self._stream_state() != "LIVE":
                    continue  # the camera is away: wait for the stream, keep the consumer
                row = await self._consumer_state()
                local = await consumer.transport_state()
                # Dead when VAS says so, or when this side's ICE, DTLS or peer connection
                # failed (a player re-attaches then too, without waiting for VAS to notice).
                dead = row not in ALIVE or bool(DEAD & {local.get(k) for k in
                                                       ("ice", "dtls", "connection")})
                seen = f"{row} {local.get('ice')} {local.get('dtls')}"
                if seen != described:
                    await self._describe(consumer, silent, row, "re-attach" if dead else "wait",
                                         local)
                    described = seen
                if dead:
                    return  # the transport died: re-attach
            await self._describe(consumer, time.monotonic() - max(self.last_frame, attached_at),
                                 await self._consumer_state(), "re-attach (track ended)")
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


async def watching(vas: VasClient, stream_id: str, modes: tuple[str, ...]) -> list[Viewer]:
    viewers = [Viewer(vas, stream_id, mode) for mode in modes]
    for viewer in viewers:
        viewer.start()
    started = time.monotonic()
    for viewer in viewers:
        await viewer.frame_after(started - 1, 30)
    return viewers


def stuck(viewers: list[Viewer]) -> dict[str, Any]:
    return {v.mode: (v.frames, v.attached) for v in viewers}
