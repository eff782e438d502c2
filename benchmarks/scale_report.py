"""What the scale drill prints (benchmarks/scale_drill.py): where it ran (commit, machine,
load), each fault's gaps and its timeline of /metrics, the cameras' connection counts over
the whole run. The computations are plain functions of the samples (tests/unit)."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import percentile
from benchmarks.scale_sampler import Point, Sampler

ROOT = Path(__file__).resolve().parents[1]
LIVE = "LIVE"


@dataclass
class Fault:
    """One signal to one node and what followed, in time.monotonic() seconds."""

    kind: str  # SIGKILL or SIGTERM
    node: str
    signalled: float
    streams: list[str]  # the node's streams at the signal
    seats: int  # free seats on the other nodes at the signal
    back: dict[str, tuple[float, str]] = field(default_factory=dict)  # stream → (LIVE, node)
    exit_code: int | None = None
    restart_began: float | None = None
    registered_after: float | None = None  # seconds from the restart's start
    ended: float = 0.0  # when the drill stopped watching this fault
    uptime: str = ""  # `uptime` at the signal

    def moved(self) -> list[float]:
        """Gaps from the signal of the streams that came back on another node."""
        return sorted(t - self.signalled for t, node in self.back.values() if node != self.node)

    def returned(self) -> list[float]:
        """Gaps from the signal of the streams that came back on the restarted node."""
        return sorted(t - self.signalled for t, node in self.back.values() if node == self.node)

    def returned_from_restart(self) -> list[float]:
        if self.restart_began is None:
            return []
        began = self.restart_began
        return sorted(t - began for t, node in self.back.values() if node == self.node)

    def lost(self) -> list[str]:
        return [s for s in self.streams if s not in self.back]


def seconds(values: list[float]) -> str:
    """p50 and max of `values`, then each one."""
    if not values:
        return "none"
    each = ", ".join(f"{v:.2f}" for v in sorted(values))
    return (f"p50 {percentile(sorted(values), 50):.2f} s, max {max(values):.2f} s "
            f"(each: {each})")


def target(values: list[float], bound: float) -> str:
    if not values:
        return "no stream to judge"
    return f"{'met' if max(values) <= bound else 'NOT met'} (≤ {bound:g} s)"


def max_connections(points: Iterable[Point]) -> dict[str, int]:
    """The most RTSP connections each camera (by stream) had at any sample."""
    most: dict[str, int] = {}
    for point in points:
        for sid, n in point.connections.items():
            most[sid] = max(most.get(sid, 0), n)
    return most


def unserved(points: Iterable[Point], faults: list[Fault], grace: float = 1.0
             ) -> list[tuple[float, str]]:
    """(sample time, stream) of every sample where a stream's row was LIVE and its camera
    had no connection, outside the time its node's fault left it without one (from the
    signal until it was LIVE again, plus `grace`; until the end if it never came back). A
    sample counts from its start to its end (`took`)."""
    excused: dict[str, list[tuple[float, float]]] = {}
    for fault in faults:
        for sid in fault.streams:
            end = fault.back[sid][0] + grace if sid in fault.back else float("inf")
            excused.setdefault(sid, []).append((fault.signalled, end))
    found = []
    for point in points:
        for sid, n in point.connections.items():
            state = point.rows.get(sid, ("", None))[0]
            # A sample spans [t, t + took]: one begun just before a signal reads the
            # connection table after it, so it is in the fault when its span reaches it.
            if n == 0 and state == LIVE and not any(
                    a <= point.t + point.took and point.t <= b for a, b in excused.get(sid, [])):
                found.append((point.t, sid))
    return found


def window(points: list[Point], start: float, end: float, step: float) -> list[Point]:
    """The samples from `start` to `end`: every one when `step` is 0, else the first of each
    `step` seconds counted from `start`."""
    inside = [p for p in points if start <= p.t <= end]
    if step <= 0:
        return inside
    chosen: dict[int, Point] = {}
    for point in inside:
        chosen.setdefault(int((point.t - start) // step), point)
    return [chosen[k] for k in sorted(chosen)]


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def timeline(points: list[Point], since: float, names: list[str]) -> list[str]:
    """A markdown table: one row per sample, times from `since`."""
    head = ["t (s)", "UTC", "API LIVE", "API nodes", "API Σ node streams",
            *[f"{n} own" for n in names], "rows per node", "queues", "RTSP 0 / ≥2", "load",
            "errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in points:
        owners: dict[str, int] = {}
        for state, node in p.rows.values():
            if state == LIVE and node:
                owners[node] = owners.get(node, 0) + 1
        per_node = " ".join(f"{n.rsplit('-', 1)[-1]}:{owners.get(n, 0)}" for n in names)
        queues = " ".join(f"{q}={d:g}" for q, d in sorted(p.queues.items())) or "-"
        zero = sum(1 for n in p.connections.values() if n == 0)
        many = sum(1 for n in p.connections.values() if n > 1)
        cells = [f"{p.t - since:+.1f}", p.wall, _count(p.live), _count(p.alive),
                 _count(p.node_load), *[_count(p.nodes.get(n)) for n in names], per_node,
                 queues, f"{zero} / {many}", f"{p.load:.1f}", "; ".join(p.errors) or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def gaps_between(points: list[Point]) -> float:
    """The longest time between two consecutive samples."""
    return max((b.t - a.t for a, b in itertools.pairwise(points)), default=0.0)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def machine() -> str:
    """CPU model, cores and memory, from /proc."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), "0")
    return (f"{models[0] if models else 'unknown CPU'}, {len(models) or os.cpu_count()} "
            f"cores (/proc/cpuinfo), {int(memory) / 1024 / 1024:.1f} GiB RAM")


def commit() -> str:
    """The checkout's short commit, and whether its tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    dirty = bool(git("status", "--porcelain"))
    return f"{git('rev-parse', '--short', 'HEAD') or 'unknown'}{' (dirty)' if dirty else ''}"


def report(faults: list[Fault], watched: dict[str, list[Any]], viewers: list[Any],
           sampler: Sampler, names: list[str], step: float) -> int:
    """Print the drill's figures; 0 if nothing was lost, doubled or left without video."""
    points = sampler.points
    ok = bool(points)
    span = points[-1].t - points[0].t if points else 0.0
    errors: dict[str, int] = {}
    for p in points:
        for error in p.errors:
            errors[error] = errors.get(error, 0) + 1
    loads = [p.load for p in points]
    print(f"\nsamples: {len(points)} over {span:.0f} s (period {sampler.period:g} s), longest "
          f"interval {gaps_between(points):.2f} s, periods missed {sampler.missed}, longest "
          f"sample {max((p.took for p in points), default=0):.2f} s; 1-min load average "
          f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f}")
    print(f"sources not answering (samples): {errors or 'none'}")
    for f in faults:
        seated = min(len(f.streams), f.seats)
        bound = 15.0 if f.kind == "SIGKILL" else 3.0
        print(f"\n## {f.kind} {f.node} (exit {f.exit_code}): {len(f.streams)} streams, "
              f"{f.seats} free seats on the other nodes\nload at the signal: {f.uptime}")
        print(f"moved to other nodes: {len(f.moved())} (seats for {seated}), gap from the "
              f"signal: {seconds(f.moved())}; target: {target(f.moved(), bound)}")
        if f.restart_began is not None:
            print(f"node restarted under the same VAS_NODE_ID {f.restart_began - f.signalled:.2f}"
                  f" s after the signal; start to registered: {f.registered_after or 0:.2f} s")
        print(f"back on the restarted node: {len(f.returned())}, gap from the signal: "
              f"{seconds(f.returned())}; from the restart's start: "
              f"{seconds(f.returned_from_restart())}")
        print(f"every stream, gap from the signal: {seconds([*f.moved(), *f.returned()])}")
        if f.lost():
            print(f"NOT LIVE again: {len(f.lost())}: {', '.join(f.lost())}")
        mine = watched.get(f.kind, [])
        back = sorted(v.back_after[0] for v in mine if v.back_after)
        print(f"viewers of its streams: {len(mine)}, transports closed by the node: "
              f"{sum(v.ended for v in mine)}, video again after re-attaching: "
              f"{len(back)}/{len(mine)}: {seconds(back)}")
        print(f"\ntimeline around {f.kind} (t from the signal; '<node> own': the node's own "
              "vas_node_streams, - when it does not answer; rows: LIVE rows per node):\n")
        every = 0.0 if step <= sampler.period else step  # a step of a period: every sample
        print("\n".join(timeline(window(points, f.signalled - 5, f.ended, every), f.signalled,
                                 names)))
        ok &= not f.lost() and len(back) == len(mine)
    if points:
        print("\nthe whole run, one row per 10 s (t from the first sample; every sample is in "
              "--timeline):\n")
        print("\n".join(timeline(window(points, points[0].t, points[-1].t, 10.0),
                                 points[0].t, names)))
    most = max_connections(points)
    doubled = {sid: n for sid, n in most.items() if n > 1}
    holes = unserved(points, faults)
    last = points[-1] if points else None
    live = sum(1 for state, _ in last.rows.values() if state == LIVE) if last else 0
    one = sum(1 for n in last.connections.values() if n == 1) if last else 0
    spread: dict[int, int] = {}
    for n in most.values():
        spread[n] = spread.get(n, 0) + 1
    zero = points[0].t if points else 0.0
    print(f"\nRTSP connections per camera, the most at any of {len(points)} samples: "
          + ", ".join(f"{c} cameras at most {n}" for n, c in sorted(spread.items()))
          + f"; cameras ever at two or more: {len(doubled)}"
          + (f" ({', '.join(f'{sid}: {n}' for sid, n in doubled.items())})" if doubled else ""))
    for point in points:
        for sid, holders in point.holders.items():
            print(f"  {point.wall} {sid}: held by {'; '.join(holders) or 'no process found'}")
    print(f"samples with a LIVE stream's camera at 0 connections outside its fault: "
          f"{len(holes)}" + (" (first: " + ", ".join(f"+{t - zero:.0f} s {sid}"
                                                      for t, sid in holes[:5]) + ")"
                             if holes else ""))
    print(f"at the last sample: streams LIVE {live}/{len(last.rows) if last else 0}, cameras "
          f"with one RTSP connection {one}/{len(last.connections) if last else 0}")
    print(f"viewer frames: {sum(v.frames for v in viewers)} over {len(viewers)} viewers; "
          f"every viewer had video: {all(v.frames > 0 for v in viewers)}")
    deepest: dict[str, float] = {}
    for p in points:
        for queue, depth in p.queues.items():
            deepest[queue] = max(deepest.get(queue, 0.0), depth)
    print(f"deepest queues over the run: { {q: int(d) for q, d in sorted(deepest.items())} }")
    print("\n| process | CPU % of a core (mean over its life) | RSS MiB (end / peak) |\n"
          "|---|---|---|")
    for name, (cpu, wall, rss) in sampler.usage.items():
        print(f"| {name} | {100 * cpu / wall:.1f} | {rss:.0f} / {sampler.peak_rss[name]:.0f} |")
    ok &= (last is not None and live == len(last.rows) and one == len(last.connections)
           and not doubled and not holes)
    return 0 if ok else 1
