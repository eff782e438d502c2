"""Soak: cameras streaming to many viewers for a long time on the default settings. The
media node's memory must stop growing after a warm-up (< 5 % growth), its threads and file
descriptors stay flat, no viewer gets stuck (every one still receives frames at the end,
every consumer still CONNECTED), and the node logs no error.

The node and the API viewers talk to are real `vas` processes; the viewers run a few per
process (tests/soak_viewers.py), half in the guide's consume/connect flow, half WHEP. The
logs of the node, the API and every viewer process stay in a directory printed at the start
(`VAS_SOAK_LOG_DIR`, else the test's temp dir), with `report.txt`: every silence of a viewer
with its transport's state, the consumer row's state and the node's log lines about that
consumer.

Marked `perf` (not in `make test`; the CI's 2-minute version of these checks is the camera
flap drill, tests/defaults/test_camera_flaps.py). `python -m benchmarks.drills --soak 3600`
runs the issue's size: 10 cameras, 50 viewers, one hour (VAS_SOAK_CAMERAS, VAS_SOAK_VIEWERS,
VAS_SOAK_SECONDS, VAS_SOAK_PER_PROCESS, VAS_SOAK_DECODE; `make perf` runs 2 cameras,
4 viewers, 2 minutes)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_SECRET, bearer
from tests.drill_viewers import slope, usage
from tests.e2e.processes import free_port
from tests.soak_viewers import ViewerProcess
from tests.vas_fixtures import add_device

pytestmark = [pytest.mark.perf, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

CAMERAS = int(os.environ.get("VAS_SOAK_CAMERAS", "2"))
VIEWERS = int(os.environ.get("VAS_SOAK_VIEWERS", "4"))
SECONDS = float(os.environ.get("VAS_SOAK_SECONDS", "120"))
PER_PROCESS = int(os.environ.get("VAS_SOAK_PER_PROCESS", "5"))
DECODE = os.environ.get("VAS_SOAK_DECODE", "") not in ("", "0")
SAMPLE_S = 5.0
WARM_UP = 0.25  # the first quarter fills codec, WebRTC and allocator pools
STUCK_S = 10.0


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_counters(metrics_port: int) -> Counter[str]:
    """The node's dropped packets by queue, the packets its fan-outs sent, and its event
    loop's lag probes: all of them and those later than 0.5 and 2 s."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        value = float(line.split()[-1]) if line and not line.startswith("#") else 0.0
        if line.startswith("vas_media_packets_dropped_total{"):
            queue = re.search(r'queue="([^"]+)"', line)
            counts[f"dropped {queue.group(1) if queue else '?'}"] += value
        elif line.startswith("vas_fanout_packets_sent_total{"):
            counts["sent"] += value
        elif line.startswith("vas_event_loop_lag_seconds_count"):
            counts["lag probes"] += value
        elif bucket := re.match(r'vas_event_loop_lag_seconds_bucket\{le="(0\.5|2\.0)"\}', line):
            counts[f"lag <= {bucket.group(1)} s"] += value
    return counts


def said_about(lines: list[str], consumer: str | None) -> list[str]:
    return [line for line in lines if consumer and consumer in line]


def cause(event: dict[str, Any], node_lines: list[str]) -> str:
    """A silence's signature: mode, row, local transport, the node's last word on it."""
    local = event.get("local") or {}
    states = "/".join(str(local.get(k)) for k in ("connection", "ice", "dtls") if k in local)
    said = said_about(node_lines, event.get("consumer"))
    telling = [line for line in said if not line.endswith(" closed")] or said  # why, not that
    last = telling[-1].split(": ", 1)[-1] if telling else "nothing"
    last = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", last)
    last = re.sub(r"\d+(\.\d+)?", "N", last)
    return f"{event['mode']}: row {event.get('row')}, local {states or '?'}, node: {last}"


def write_report(logs: Path, processes: list[ViewerProcess], node_lines: list[str],
                 stuck: list[dict[str, Any]], summary: list[str]) -> Counter[str]:
    """report.txt: the summary, every stuck viewer and every silence with what the node
    logged about its consumer; returns the silences counted by cause."""
    silences = [event for p in processes for event in p.silences]
    causes = Counter(cause(event, node_lines) for event in silences)
    with open(logs / "report.txt", "w") as out:
        out.write("\n".join(summary) + "\n\n## silences by cause\n")
        for text, count in causes.most_common():
            out.write(f"{count:5d}  {text}\n")
        out.write("\n## viewers stuck at the end\n")
        for row in stuck:
            out.write(f"{row}\n")
            for line in said_about(node_lines, row.get("consumer"))[-15:]:
                out.write(f"    node: {line}\n")
        out.write("\n## every silence\n")
        for event in sorted(silences, key=lambda e: e["t"]):
            out.write(f"{time.strftime('%H:%M:%S', time.gmtime(event['t']))} {event}\n")
            for line in said_about(node_lines, event.get("consumer"))[-8:]:
                out.write(f"    node: {line}\n")
    return causes


async def test_soak(client: httpx.AsyncClient, admin_token: str, start_process: Any,
                    start_camera: Any, settings_env: dict[str, str], tmp_path: Path) -> None:
    logs = Path(os.environ.get("VAS_SOAK_LOG_DIR") or tmp_path / "soak-logs")
    logs.mkdir(parents=True, exist_ok=True)
    print(f"soak: logs in {logs}; load average {load()}", flush=True)
    metrics_port = free_port()
    node = start_process("media-node", "registered", log=logs / "node.log",
                         VAS_NODE_CAPACITY=str(max(16, CAMERAS)),
                         VAS_METRICS_PORT=str(metrics_port))
    api_port = free_port()
    api = start_process("api", "Application startup complete", log=logs / "api.log",
                        VAS_PORT=str(api_port))
    headers = bearer(admin_token)
    streams = []
    for _ in range(CAMERAS):
        camera = start_camera(width=320, height=240, fps=10, gop=20)
        device_id = await add_device(client, camera.url)
        started = await client.post(f"/api/v1/devices/{device_id}/start-stream", timeout=60)
        assert started.status_code == 200, started.text
        streams.append(started.json()["v2_stream_id"])
    # Viewer i watches stream i mod CAMERAS; modes alternate on each stream too.
    assignments = [(streams[i % CAMERAS], ("guide", "whep")[(i + i // CAMERAS) % 2])
                   for i in range(VIEWERS)]
    processes = [
        ViewerProcess(f"http://127.0.0.1:{api_port}", settings_env["VAS_ADMIN_CLIENT_ID"],
                      ADMIN_SECRET, assignments[first:first + PER_PROCESS], first, logs,
                      decode=DECODE)
        for first in range(0, VIEWERS, PER_PROCESS)]
    samples: list[tuple[float, int, int, int]] = []
    try:
        deadline = time.monotonic() + 60 + VIEWERS * 2
        while not all(p.status and all(v["frames"] for v in p.status["viewers"])
                      for p in processes):
            assert all(p.alive() for p in processes), "a viewer process ended"
            assert time.monotonic() < deadline, [p.status for p in processes]
            await asyncio.sleep(0.5)
        began = time.monotonic()
        cpu_began = cpu_seconds(node.proc.pid)
        counted_before = node_counters(metrics_port)
        for process in processes:
            process.worst_lag = 0.0  # from here on
        with open(logs / "node-usage.tsv", "w") as kept:  # kept even if a later check fails
            kept.write("seconds\tthreads\tfds\trss_bytes\n")
            while (now := time.monotonic()) - began < SECONDS:
                samples.append((now - began, *usage(node.proc.pid)))
                kept.write("\t".join(f"{v:.0f}" for v in samples[-1]) + "\n")
                kept.flush()
                await asyncio.sleep(SAMPLE_S)
        end, ended_at = time.monotonic(), time.time()
        node_cpu = (cpu_seconds(node.proc.pid) - cpu_began) / (end - began)
        while not all(p.status and p.status["t"] > ended_at for p in processes):
            assert all(p.alive() for p in processes), "a viewer process ended"
            await asyncio.sleep(0.2)
        finals = [v for p in processes if p.status for v in p.status["viewers"]]
        stuck = [v for v in finals if v["silent_s"] is None or v["silent_s"] > STUCK_S]
        consumers = []
        # A new token: the first one expires after an hour (the access token lifetime), within a long run.
        login = await client.post("/v2/auth/token",
                                  json={"client_id": "admin", "client_secret": ADMIN_SECRET})
        assert login.status_code == 200, login.text
        headers = bearer(login.json()["access_token"])
        for stream_id in streams:
            listed = await client.get(f"/v2/streams/{stream_id}/consumers", headers=headers)
            assert listed.status_code == 200, listed.text
            consumers += [c["state"] for c in listed.json()["consumers"] if c["state"] != "CLOSED"]
        counters = node_counters(metrics_port)
        counters.subtract(counted_before)
    finally:
        for process in processes:
            process.stop()
    warm = [s for s in samples if s[0] >= SECONDS * WARM_UP]
    rss = [s[3] for s in warm]
    growth = (rss[-1] - rss[0]) / rss[0]
    threads, fds = [s[1] for s in warm], [s[2] for s in warm]
    reattached = sum(v["attached"] - 1 for v in finals)
    logged = [line for line in node.lines + api.lines
              if " ERROR " in line or "Traceback" in line]
    frames = [v["frames"] for v in finals]

    def late(seconds: float) -> str:
        return f"{counters['lag probes'] - counters[f'lag <= {seconds} s']:.0f}"

    dropped = ", ".join(f"{k[8:]} {v:.0f}" for k, v in counters.items() if k.startswith("dropped"))

    summary = [
        f"soak: {CAMERAS} cameras, {VIEWERS} viewers in {len(processes)} processes "
        f"({'decoding' if DECODE else 'counting complete frames'}), {SECONDS / 60:.0f} min; "
        f"load average at the end {load()}",
        f"soak: node RSS {samples[0][3] >> 20} MiB at start, {rss[0] >> 20} MiB after warm-up, "
        f"{rss[-1] >> 20} MiB at the end ({growth * 100:+.1f} %, slope "
        f"{slope([float(r) for r in rss]) / 1024 / SAMPLE_S * 60:+.0f} KiB/min); threads "
        f"{threads[0]}→{threads[-1]}, fds {fds[0]}→{fds[-1]}; node CPU {node_cpu * 100:.0f} % "
        f"of a core",
        f"soak: node event loop late > 0.5 s in {late(0.5)} and > 2 s in {late(2.0)} of "
        f"{counters['lag probes']:.0f} probes; node packets sent {counters['sent']:.0f}, "
        f"dropped {dropped}",
        f"soak: frames per viewer {min(frames)} to {max(frames)}; re-attaches {reattached}; "
        f"silences {sum(len(p.silences) for p in processes)}; stuck viewers {len(stuck)}; "
        f"open consumers {len(consumers)}/{VIEWERS} "
        f"({sum(c == 'CONNECTED' for c in consumers)} CONNECTED); errors logged {len(logged)}",
        f"soak: viewer processes' worst event-loop lag "
        f"{max(p.worst_lag for p in processes):.2f} s (each: "
        f"{', '.join(f'{p.worst_lag:.2f}' for p in processes)}), CPU "
        f"{sum(p.status['cpu_s'] for p in processes if p.status):.0f} s in all",
    ]
    causes = write_report(logs, processes, node.lines, stuck, summary)
    for line in summary:
        print(line, flush=True)
    for text, count in causes.most_common(8):
        print(f"soak: silence x{count}: {text}", flush=True)
    for line in logged[:10]:
        print(f"soak: logged: {line}", flush=True)
    print(f"soak: report in {logs / 'report.txt'}", flush=True)
    assert growth < 0.05, rss
    assert abs(threads[-1] - threads[0]) <= 2 and abs(fds[-1] - fds[0]) <= 4, (threads, fds)
    assert stuck == [] and consumers == ["CONNECTED"] * VIEWERS, (stuck, consumers)
    assert logged == [], logged[:5]
