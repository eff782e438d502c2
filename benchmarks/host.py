"""Host-side helpers of the benchmarks: Debian packages, CPU of process trees, host load.

Process-tree CPU is utime + stime of a process and of every live descendant, read from
/proc. A descendant that exits during a window takes its CPU with it (the kernel adds it to
the parent's cutime only when reaped); `TreeCpu` keeps the last value seen of each PID so a
short-lived child still counts for what it used while it was seen.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.processes import descendants

CLK_TCK = os.sysconf("SC_CLK_TCK")


def ensure_debian_packages(commands: dict[str, str]) -> None:
    """`apt-get install` the package of every command in `commands` that is missing.

    `commands` maps an executable (looked up on PATH, or an absolute path) to its Debian
    package. Needs root, as the tests do.
    """
    missing = sorted({pkg for cmd, pkg in commands.items()
                      if not (Path(cmd).exists() if cmd.startswith("/") else shutil.which(cmd))})
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"missing {', '.join(missing)}: run as root so apt-get can install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                      env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", *missing],
                       env=env, check=True)


def process_cpu(pid: int) -> float | None:
    """utime + stime of one process in seconds, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class TreeCpu:
    """CPU seconds used by a set of root processes and all their descendants."""

    roots: list[int]
    seen: dict[int, float] = field(default_factory=dict)

    def sample(self) -> float:
        pids = set(self.roots)
        for root in self.roots:
            pids |= descendants(root)
        for pid in pids:
            cpu = process_cpu(pid)
            if cpu is not None:
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))
        return sum(self.seen.values())


def host_busy() -> tuple[float, float]:
    """(busy jiffies, total jiffies) of the whole host, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return float(total - idle), float(total)


@dataclass
class Window:
    """Measures several process trees and the host over one wall-clock window."""

    trees: dict[str, TreeCpu]
    start: float = 0.0
    _cpu0: dict[str, float] = field(default_factory=dict)
    _host0: tuple[float, float] = (0.0, 0.0)

    def begin(self) -> None:
        self._cpu0 = {name: tree.sample() for name, tree in self.trees.items()}
        self._host0 = host_busy()
        self.start = time.monotonic()

    def end(self) -> dict[str, float]:
        """CPU seconds per second of each tree, plus `host_busy` (0 to 1, of all cores)."""
        cpu1 = {name: tree.sample() for name, tree in self.trees.items()}
        wall = time.monotonic() - self.start
        busy1, total1 = host_busy()
        result = {name: (cpu1[name] - self._cpu0[name]) / wall for name in self.trees}
        result["host_busy"] = (busy1 - self._host0[0]) / max(total1 - self._host0[1], 1.0)
        result["seconds"] = wall
        return result


def machine() -> dict[str, object]:
    """What the figures were taken on: cores, CPU model, load, date."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
