"""Fault drills, long versions: the drill tests run with drill sizes, their figures printed.

    python -m benchmarks.drills                      # every drill; flaps x100 (2-30 s), 1 h soak
    python -m benchmarks.drills --only flaps --flaps 20
    python -m benchmarks.drills --only soak --soak 600 --cameras 10 --viewers 50

Each drill is a test of the suite (the short version runs in `make test`; the soak is marked
`perf`); this runs it with the drill's size (`VAS_DRILL_FLAPS`, `VAS_SOAK_*`) and prints
the lines the tests report (return times, per-flap slopes of the media node's threads,
descriptors and RSS, outage figures, the soak's memory growth), to be copied into
docs/reliability.md with the date, the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
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
    args = parser.parse_args()
    env = {**os.environ, "VAS_DRILL_FLAPS": str(args.flaps),
           "VAS_SOAK_SECONDS": str(args.soak), "VAS_SOAK_CAMERAS": str(args.cameras),
           "VAS_SOAK_VIEWERS": str(args.viewers)}
    failed = 0
    for name in args.only or list(DRILLS):
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:warnings", "-m", "",
             DRILLS[name]], env=env, capture_output=True, text=True, check=False)
        lines = [line for line in result.stdout.splitlines() if line.startswith(REPORTED)]
        verdict = "passed" if result.returncode == 0 else f"FAILED ({result.returncode})"
        print(f"## {name}: {verdict} in {(time.monotonic() - began) / 60:.1f} min", flush=True)
        for line in lines:
            print(f"    {line}", flush=True)
        if result.returncode != 0:
            print("\n".join(result.stdout.splitlines()[-30:]), flush=True)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
