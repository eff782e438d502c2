"""The soak's viewers, a few per process, so that the viewers are not what runs out of CPU.

    VAS_URL=… VAS_CLIENT_ID=… VAS_CLIENT_SECRET=… python -m tests.soak_viewers \\
        --first 10 STREAM_ID:guide STREAM_ID:whep …

Each viewer is a `tests.drill_viewers.Viewer` (the guide's consume/connect flow or WHEP,
re-attaching as the guide's "Stream Crash Recovery" says). The process prints JSON lines on
stdout: a `status` every STATUS_S seconds (each viewer's frames, seconds since its last
frame, attachments, consumer id, and for a silent one its transport's state; the process's
event-loop lag and CPU time, to show whether the viewers themselves were starved) and a
`silence` line each time a viewer describes a silence. SIGTERM or SIGINT closes the
consumers (DELETE) and ends the process after a last `status`.

By default a viewer counts the complete frames aiortc reassembles from RTP (by timestamp
and marker bit) without decoding them: every packet still goes through SRTP, the jitter
buffer, NACK and RTCP, but no H.264 decoding and no RGB conversion. `--decode` decodes.

`ViewerProcess` is the test's handle on one such process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

STATUS_S = 2.0
LAG_PROBE_S = 0.25


def count_complete_frames() -> None:
    """Replace aiortc's decoders in this process with one that only passes on a tiny frame
    per complete encoded frame (the `Viewer` counts them)."""
    import av
    from aiortc import rtcrtpreceiver

    class Counting:
        def decode(self, encoded: Any) -> list[Any]:
            frame = av.VideoFrame(16, 16, "yuv420p")
            frame.pts = encoded.timestamp
            return [frame]

    rtcrtpreceiver.get_decoder = lambda codec: Counting()


async def _lag_probe(worst: list[float]) -> None:
    while True:
        began = time.monotonic()
        await asyncio.sleep(LAG_PROBE_S)
        worst[0] = max(worst[0], time.monotonic() - began - LAG_PROBE_S)


async def _main(assignments: list[tuple[str, str]], first: int) -> None:
    from tests.drill_viewers import SILENT_S, Viewer
    from vas_client import VasClient

    def emit(line: dict[str, Any]) -> None:
        print(json.dumps(line), flush=True)

    vas = VasClient()
    viewers = [Viewer(vas, stream, mode) for stream, mode in assignments]
    for index, viewer in enumerate(viewers, first):
        viewer.on_silence = lambda event, i=index: emit({"kind": "silence", "viewer": i, **event})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worst_lag = [0.0]
    probe = asyncio.ensure_future(_lag_probe(worst_lag))

    async def status(kind: str = "status") -> None:
        now = time.monotonic()
        rows = []
        for index, viewer in enumerate(viewers, first):
            silent = now - viewer.last_frame if viewer.last_frame else None
            row: dict[str, Any] = {
                "viewer": index, "mode": viewer.mode, "stream": viewer.stream_id,
                "frames": viewer.frames, "attached": viewer.attached,
                "silent_s": None if silent is None else round(silent, 1),
                "consumer": viewer.consumer.consumer_id if viewer.consumer else None,
                "errors": viewer.errors[-2:]}
            if viewer.consumer is not None and (silent is None or silent > SILENT_S):
                row["local"] = await viewer.consumer.transport_state()
            rows.append(row)
        emit({"kind": kind, "t": time.time(), "lag_max_s": round(worst_lag[0], 3),
              "cpu_s": round(time.process_time(), 1), "viewers": rows})
        worst_lag[0] = 0.0

    for viewer in viewers:
        viewer.start()
        await asyncio.sleep(0.2)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATUS_S)
        await status()
    probe.cancel()
    for viewer in viewers:
        await viewer.stop()
    await status("stopped")
    await vas.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("viewers", nargs="+", help="STREAM_ID:MODE (guide or whep)")
    parser.add_argument("--first", type=int, default=0, help="index of the first viewer")
    parser.add_argument("--decode", action="store_true", help="decode every frame")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.INFO)  # says when consent expired
    if not args.decode:
        count_complete_frames()
    assignments = [(item.split(":")[0], item.split(":")[1]) for item in args.viewers]
    asyncio.run(_main(assignments, args.first))


class ViewerProcess:
    """One `python -m tests.soak_viewers` process: its latest status, its silences, its
    JSON lines in `<log_dir>/viewers-<first>.jsonl` and its stderr in `viewers-<first>.log`."""

    def __init__(self, url: str, client_id: str, secret: str,
                 assignments: list[tuple[str, str]], first: int, log_dir: Path,
                 decode: bool = False) -> None:
        env = {**os.environ, "VAS_URL": url, "VAS_CLIENT_ID": client_id,
               "VAS_CLIENT_SECRET": secret}
        args = [sys.executable, "-m", "tests.soak_viewers", "--first", str(first),
                *(f"{stream}:{mode}" for stream, mode in assignments)]
        self._stderr = open(log_dir / f"viewers-{first}.log", "w")  # noqa: SIM115
        self._jsonl = log_dir / f"viewers-{first}.jsonl"
        self.proc = subprocess.Popen(
            [*args, *(["--decode"] if decode else [])], env=env,
            cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
            stderr=self._stderr, text=True)
        self.status: dict[str, Any] | None = None
        self.silences: list[dict[str, Any]] = []
        self.worst_lag = 0.0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self._jsonl, "w", buffering=1) as out:
            for line in self.proc.stdout:
                out.write(line)
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if item.get("kind") == "silence":
                    self.silences.append(item)
                elif item.get("kind") in ("status", "stopped"):
                    self.worst_lag = max(self.worst_lag, float(item["lag_max_s"]))
                    self.status = item

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (the viewers close their consumers), SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._stderr.close()


if __name__ == "__main__":
    main()
