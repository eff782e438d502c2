"""Fault drills, long versions: the drill tests run with drill sizes, their figures printed.

    python -m benchmarks.drills                      # every drill; flaps x100 (2-30 s), 1 h soak
    python -m benchmarks.drills --only flaps --flaps 20
    python -m benchmarks.drills --only soak --soak 600 --cameras 10 --viewers 50

Each drill is a test of the suite (the short version runs in `make test`; the soak is marked
`perf`); this runs it with the drill's size (`VAS_DRILL_FLAPS`, `VAS_SOAK_*`) and prints
the lines the tests report as they come (return times, per-flap slopes of the media node's
threads, descriptors and RSS, outage figures, the soak's memory growth and viewers), to be
copied into docs/reliability.md with the date, the machine and its load. The soak keeps the
logs of its node, API and viewer processes and its report in a directory printed first
(`--logs`, else a new one under /tmp).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

DRILLS = {
    "flaps": "tests/defaults/test_camera_flaps.py",
    "redis": "tests/streaming/test_redis_restart.py",
    "postgres": "tests/streaming/test_postgres_restart.py",
    "node-kill": "tests/streaming/test_node_kill_drill.py",
    "disk-full": "tests/streaming/test_disk_full.py",
    "soak": "tests/perf/test_soak.py",
}
REPORTED = ("LIVE again after", "Redis down", "PostgreSQL down", "node kill", "disk full",
            "soak:")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(DRILLS), action="append",
                        help="run only this drill (repeatable)")
    parser.add_argument("--flaps", type=int, default=100)
    parser.add_argument("--soak", type=float, default=3600, help="soak seconds")
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--per-process", type=int, default=5, help="soak viewers per process")
    parser.add_argument("--decode", action="store_true",
                        help="soak viewers decode every frame (default: count complete frames)")
    parser.add_argument("--logs", help="directory for the soak's logs and report")
    args = parser.parse_args()
    env = {**os.environ, "VAS_DRILL_FLAPS": str(args.flaps),
           "VAS_SOAK_SECONDS": str(args.soak), "VAS_SOAK_CAMERAS": str(args.cameras),
           "VAS_SOAK_VIEWERS": str(args.viewers), "VAS_SOAK_PER_PROCESS": str(args.per_process),
           "VAS_SOAK_DECODE": "1" if args.decode else ""}
    names = args.only or list(DRILLS)
    if "soak" in names:
        logs = args.logs or tempfile.mkdtemp(prefix="vas-soak-")
        os.makedirs(logs, exist_ok=True)
        env["VAS_SOAK_LOG_DIR"] = logs
        print(f"soak logs and report: {logs}", flush=True)
    failed = 0
    for name in names:
        began = time.monotonic()
        print(f"## {name}: started {time.strftime('%H:%M:%S')}", flush=True)
        with subprocess.Popen(
                [sys.executable, "-m", "pytest", "-q", "-s", "-n", "0", "-p", "no:warnings",
                 "-m", "", DRILLS[name]], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True) as run:
            assert run.stdout is not None
            tail: list[str] = []
            for line in run.stdout:
                tail = [*tail[-29:], line.rstrip("\n")]
                # A test's first line follows pytest's progress mark on the same line.
                found = [line.find(mark) for mark in REPORTED if mark in line]
                if found:
                    print(f"    {line[min(found):].rstrip()}", flush=True)
        verdict = "passed" if run.returncode == 0 else f"FAILED ({run.returncode})"
        print(f"## {name}: {verdict} in {(time.monotonic() - began) / 60:.1f} min", flush=True)
        if run.returncode != 0:
            print("\n".join(tail), flush=True)
        failed += run.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
