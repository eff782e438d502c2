"""Fault drills, long versions: the drill tests run with drill sizes, their figures printed.

    python -m benchmarks.drills            # camera flaps x100 (2-30 s outages), Redis restart
    python -m benchmarks.drills --flaps 20

Each drill is a test of the suite (the short version runs in `make test`); this runs it
with `VAS_DRILL_FLAPS` and prints the lines the tests report (return times, per-flap
slopes of the media node's threads, descriptors and RSS), to be copied into
docs/reliability.md with the date and machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

DRILLS = {
    "camera flaps": "tests/defaults/test_camera_flaps.py",
    "redis restart": "tests/streaming/test_redis_restart.py",
}
REPORTED = ("LIVE again after", "Redis down")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flaps", type=int, default=100)
    args = parser.parse_args()
    env = {**os.environ, "VAS_DRILL_FLAPS": str(args.flaps)}
    failed = 0
    for name, path in DRILLS.items():
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", path],
                                env=env, capture_output=True, text=True, check=False)
        lines = [line for line in result.stdout.splitlines() if line.startswith(REPORTED)]
        verdict = "passed" if result.returncode == 0 else f"FAILED ({result.returncode})"
        print(f"## {name}: {verdict}")
        for line in lines:
            print(f"    {line}")
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
