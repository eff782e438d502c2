"""Benchmark: an idle media node (no streams): its CPU, and the control round trip.

    python -m benchmarks.idle_node [--seconds 30] [--round-trips 100]

`vas up` as a user starts it (embedded SQLite and Redis, API + worker + media node, default
log level), no
device, no stream. After `--settle` seconds, CPU (utime + stime from /proc) is sampled over
`--seconds`: of the media-node process alone, of each other child, and of the whole `vas up`
tree (the embedded redis-server included), as % of one core. Then `GET /v2/nodes`
`--round-trips` times, one after the other: the API pings the media node over its control
queue and reports `rtt_ms` (API → Redis → media node → Redis → API); also the wall time of
each whole HTTP request. Nothing is requested during the CPU window.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Server, child_with, percentile, progress
from benchmarks.host import TreeCpu, Window, machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--settle", type=float, default=5)
    parser.add_argument("--round-trips", type=int, default=100)
    parser.add_argument("--json", type=Path, default=Path("artifacts/idle_node.json"),
                        help="where the figures go as JSON (artifacts/ is not in git)")
    args = parser.parse_args()
    before = machine()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), VAS_LOG_LEVEL="INFO")  # the default, as users run it
        try:
            root = server.process.proc.pid
            trees = {"media-node": TreeCpu([server.media_node_pid()]),
                     "api": TreeCpu([child_with(root, "api.cli api")]),
                     "worker": TreeCpu([child_with(root, "api.cli worker")]),
                     "vas up (whole tree)": TreeCpu([root])}
            progress(f"idle for {args.settle:g} s, then {args.seconds:g} s of CPU")
            time.sleep(args.settle)
            window = Window(trees)
            window.begin()
            time.sleep(args.seconds)
            cpu = window.end()
            progress(f"{args.round_trips} control round trips")
            rtts, walls = [], []
            for _ in range(args.round_trips):
                began = time.perf_counter()
                nodes = server.http.get("/v2/nodes").json()["nodes"]
                walls.append((time.perf_counter() - began) * 1000)
                rtts.append(float(nodes[0]["rtt_ms"]))
        finally:
            server.close()
    report: dict[str, Any] = {
        "machine_before": before, "machine_after": machine(),
        "cpu_percent_of_one_core": {name: cpu[name] * 100 for name in trees},
        "window_s": cpu["seconds"], "host_busy": cpu["host_busy"],
        "rtt_ms": {"p50": percentile(rtts, 50), "p95": percentile(rtts, 95), "max": max(rtts)},
        "request_ms": {"p50": percentile(walls, 50), "p95": percentile(walls, 95),
                       "max": max(walls)},
        "round_trips": args.round_trips,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"| process (idle, no stream) | CPU over {cpu['seconds']:.0f} s, % of one core |")
    print("| --- | --- |")
    for name in trees:
        print(f"| {name} | {cpu[name] * 100:.2f} % |")
    print(f"\nWhole host busy in that window (all users): {cpu['host_busy'] * 100:.0f} %\n")
    print("| what | samples | p50 | p95 | max |")
    print("| --- | --- | --- | --- | --- |")
    for label, values in (("rtt_ms reported by GET /v2/nodes", rtts),
                          ("whole GET /v2/nodes request", walls)):
        print(f"| {label} | {len(values)} | {percentile(values, 50):.1f} ms "
              f"| {percentile(values, 95):.1f} ms | {max(values):.1f} ms |")
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
