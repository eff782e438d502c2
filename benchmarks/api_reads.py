"""API read latency: GET /v2/streams and GET /api/v1/devices with a Bearer token.

    python -m benchmarks.api_reads --rate 500 --seconds 20 --streams 20
    python -m benchmarks.api_reads --wrk [--seconds 15] [--api-workers 1 2] [--postgres-url postgresql://postgres@127.0.0.1:5432/test]

Without `--wrk`: `vas up` (embedded default: SQLite + embedded Redis, one API process) with
`--streams` registered devices and streams. An open-loop load generator in this process
sends requests on a fixed schedule over `--connections` keep-alive connections; latency
counts from the scheduled send time, so a slow server cannot hide behind a slow generator.

With `--wrk` (installs Debian's `wrk` if missing): in one run, `vas up` on the embedded
default (SQLite) and `vas up` on PostgreSQL (a fresh database created on `--postgres-url`'s
server, dropped afterwards) with the machine's Redis (`--redis-url`, a namespace of its own),
each with 50 devices (POST /api/v1/devices) and 50 streams (rows written through the
product's `StreamService` and moved to STOPPED, so no media node tries to ingest 50
cameras), and beside them a Litestar "hello" app served the way `vas api` is
(`benchmarks.hello_app`). For each target, `wrk --latency` runs twice: closed loop
(`-c32`, as fast as the server answers: the ceiling) and paced to `--paced-rate` req/s with
wrk's `delay()` hook (latency at that load; wrk measures from the send, not from a fixed
schedule, so a stall is under-counted - see the open-loop mode above for that). Reports
req/s, p50/p90/p99 and the CPU of the API process, the whole `vas up` tree and wrk itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_postgres import (
    PRIVATE_POSTMASTER,
    drop_redis_namespace,
    postgres_answers,
    postgres_database,
    private_postgres,
)
from benchmarks.common import ADMIN_SECRET, Server, child_with, percentile, progress
from benchmarks.host import TreeCpu, ensure_debian_packages, machine
from tests.e2e.processes import clean_env, free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
ROWS = 50


async def load(url: str, token: str, rate: float, seconds: float,
               connections: int) -> tuple[list[float], int]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=5,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        start = time.perf_counter()
        total = int(rate * seconds)

        async def one(scheduled: float) -> None:
            nonlocal errors
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                answer = await http.get("/v2/streams", params={"limit": 50})
                if answer.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - scheduled)

        await asyncio.gather(*(one(start + i / rate) for i in range(total)))
    return latencies, errors


# --- wrk ------------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """req/s, latency percentiles (ms), requests and errors from `wrk --latency` output."""
    result: dict[str, Any] = {}
    for q in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{q}%\s+(\S+)\s*$", output, re.M)
        result[f"p{q}_ms"] = _ms(found.group(1)) if found else None
    found = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    result["req_s"] = float(found.group(1)) if found else 0.0
    found = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    result["requests"] = int(found.group(1)) if found else 0
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non_2xx"] = int(found.group(1)) if found else 0
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                      output)
    result["socket_errors"] = sum(int(g) for g in found.groups()) if found else 0
    found = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", output)
    result["max_ms"] = _ms(found.group(3)) if found else None
    return result


def run_wrk(url: str, token: str | None, seconds: float, connections: int, threads: int,
            rate: float | None, workdir: Path, trees: dict[str, TreeCpu]) -> dict[str, Any]:
    """One wrk run; `rate` paces every connection with wrk's delay() hook."""
    lines = []
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    if rate:
        lines.append(f"function delay() return {connections * 1000 / rate:.3f} end")
    script = workdir / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    script.write_text("\n".join(lines) + "\n")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
           "-s", str(script), url]
    cpu0 = {name: tree.sample() for name, tree in trees.items()}
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    output = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.monotonic() - began
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_wrk(output)
    result["cpu_ms_s"] = {name: (tree.sample() - cpu0[name]) / wall * 1000
                          for name, tree in trees.items()}
    result["cpu_ms_s"]["wrk"] = (children1.ru_utime + children1.ru_stime - children0.ru_utime
                                 - children0.ru_stime) / wall * 1000
    result["command"] = " ".join(cmd)
    result["raw"] = output
    return result


def seed(server: Server, env: dict[str, str]) -> None:
    """50 devices through the API; 50 streams through the product's StreamService."""
    from core.db import close_database, open_database
    from core.settings import load_settings
    from core.stream_states import StreamState
    from core.streams import StreamService

    devices = []
    for index in range(ROWS):
        # Port 9 on loopback: never contacted (no stream is started), never leaves the host.
        answer = server.http.post("/api/v1/devices", json={
            "name": f"camera {index:02d}", "rtsp_url": f"rtsp://127.0.0.1:9/cam{index}"})
        answer.raise_for_status()
        devices.append(uuid.UUID(answer.json()["id"]))

    async def streams() -> None:
        settings = load_settings(env)
        engine = await open_database(settings.database, create=False)
        try:
            service = StreamService()
            for device in devices:
                row, _ = await service.create(device)
                await service.transition(row.id, StreamState.STOPPED)
        finally:
            await close_database(engine)

    asyncio.run(streams())
    listed = server.http.get("/v2/streams", params={"limit": 50}).json()
    devices_listed = server.http.get("/api/v1/devices").json()
    assert len(listed["streams"]) == ROWS and len(devices_listed) == ROWS, (
        len(listed["streams"]), len(devices_listed))


def wait_port(port: int, process: subprocess.Popen[Any], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pid {process.pid} exited ({process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wrk_backend(name: str, env: dict[str, str], hello_url: str, hello_pid: int,
                args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    data = workdir / name
    data.mkdir()
    server = Server(data, VAS_LOG_LEVEL="INFO", **env)  # the default, as users run it
    results = []
    try:
        seed(server, clean_env(VAS_DATA_DIR=str(data / "var"),
                               VAS_ADMIN_CLIENT_SECRET=ADMIN_SECRET, **env))
        token = server.http.headers["Authorization"].split()[1]
        trees = {"api": TreeCpu([child_with(server.process.proc.pid, "api.cli api")]),
                 "vas_tree": TreeCpu([server.process.proc.pid]),
                 "hello": TreeCpu([hello_pid]),
                 # PostgreSQL's own CPU, when it is the benchmark's private cluster.
                 "postgres": TreeCpu(list(PRIVATE_POSTMASTER))}
        targets = [("hello (Litestar, no DB, no auth)", hello_url + "/hello", None),
                   ("GET /v2/streams?limit=50", server.url + "/v2/streams?limit=50", token),
                   ("GET /api/v1/devices (50)", server.url + "/api/v1/devices", token)]
        for label, url, bearer in targets:
            run_wrk(url, bearer, 3, args.connections, args.threads, None, workdir, trees)
            for rate in (None, args.paced_rate):
                progress(f"{name}: {label}, {'closed loop' if rate is None else f'{rate:g} req/s'}")
                result = run_wrk(url, bearer, args.seconds, args.connections, args.threads,
                                 rate, workdir, trees)
                result.update(backend=name, target=label, paced_rate=rate,
                              postgres_measured=bool(PRIVATE_POSTMASTER))
                results.append(result)
                progress(f"  {result['req_s']:.0f} req/s, p50 {result['p50_ms']} ms, "
                         f"p99 {result['p99_ms']} ms, errors {result['non_2xx']}")
    finally:
        server.close()
    return results


def wrk_table(results: list[dict[str, Any]]) -> str:
    rows = ["| database | target | load | req/s | p50 | p90 | p99 | max | non-2xx "
            "| API process CPU | whole vas up | hello app | PostgreSQL server | wrk |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
            "| --- |"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    for r in results:
        cpu = r["cpu_ms_s"]
        pg = f"{cpu['postgres'] / 10:.0f} %" if r["postgres_measured"] else "-"
        load = "closed loop, 32 conn." if r["paced_rate"] is None else \
            f"paced {r['paced_rate']:g} req/s"
        rows.append(
            f"| {r['backend']} | {r['target']} | {load} | {r['req_s']:.0f} | {ms(r['p50_ms'])} "
            f"| {ms(r['p90_ms'])} | {ms(r['p99_ms'])} | {ms(r['max_ms'])} "
            f"| {r['non_2xx'] + r['socket_errors']} | {cpu['api'] / 10:.0f} % "
            f"| {cpu['vas_tree'] / 10:.0f} % | {cpu['hello'] / 10:.0f} % "
            f"| {pg} | {cpu['wrk'] / 10:.0f} % |")
    return "\n".join(rows)


def main_wrk(args: argparse.Namespace) -> None:
    ensure_debian_packages({"wrk": "wrk"})
    results: list[dict[str, Any]] = []
    before = machine()
    postgres_note = "-"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = free_port()
        hello = subprocess.Popen([sys.executable, "-m", "benchmarks.hello_app", "--port",
                                  str(port)], cwd=REPO, stdin=subprocess.DEVNULL)
        try:
            wait_port(port, hello)
            hello_url = f"http://127.0.0.1:{port}"
            for workers in args.api_workers:
                processes = {"VAS_API_WORKERS": str(workers)}
                label = f"{workers} API process{'es' if workers > 1 else ''}"
                if "sqlite" in args.backends:
                    results += wrk_backend(f"SQLite (embedded), {label}", processes, hello_url,
                                           hello.pid, args, workdir)
                if "postgres" not in args.backends:
                    continue
                namespace = f"vas-bench-{uuid.uuid4().hex[:8]}"
                error = postgres_answers(args.postgres_url)
                server: contextlib.AbstractContextManager[str] = contextlib.nullcontext(
                    args.postgres_url)
                if error is not None:
                    progress(f"{args.postgres_url} does not answer ({error}); "
                             "using a PostgreSQL cluster of the benchmark's own")
                    server = private_postgres()
                    postgres_note = f"private cluster (the machine's: {error})"
                else:
                    postgres_note = args.postgres_url
                with server as server_url, postgres_database(server_url) as database_url:
                    try:
                        results += wrk_backend(
                            f"PostgreSQL, {label}", {"DATABASE_URL": database_url,
                                                     "REDIS_URL": args.redis_url,
                                                     "VAS_REDIS_NAMESPACE": namespace,
                                                     **processes},
                            hello_url, hello.pid, args, workdir)
                    finally:
                        drop_redis_namespace(args.redis_url, namespace)
        finally:
            stop_process(hello)
    print(wrk_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine_before": before, "machine_after": machine(),
                                     "postgres": postgres_note, "results": results}, indent=2))
    print(f"\nJSON: {args.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", help="PostgreSQL instead of the embedded SQLite")
    parser.add_argument("--redis-url", help="Redis instead of the embedded one")
    parser.add_argument("--wrk", action="store_true", help="the wrk run (see above)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--paced-rate", type=float, default=500, help="wrk's paced run, req/s")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--api-workers", nargs="+", type=int, default=[1],
                        help="VAS_API_WORKERS of each vas up (wrk mode), e.g. 1 2")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a database on the server where the benchmark's own is created")
    parser.add_argument("--json", type=Path, default=Path("artifacts/api_reads.json"),
                        help="where the figures go as JSON (artifacts/ is not in git)")
    args = parser.parse_args()
    if args.wrk:
        if args.redis_url is None:
            args.redis_url = "redis://127.0.0.1:6379/0"
        main_wrk(args)
        return
    env = {}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), **env)
        try:
            for index in range(args.streams):
                device = server.http.post("/api/v1/devices", json={
                    "name": f"cam {index}", "rtsp_url": f"rtsp://192.0.2.{index + 1}/s"}).json()
                server.http.post("/v2/streams", json={"camera_id": device["id"]})
            token = server.http.headers["Authorization"].split()[1]
            progress("warming up")
            asyncio.run(load(server.url, token, 50, 2, args.connections))
            began = time.perf_counter()
            for _ in range(200):
                server.http.get("/v2/streams", params={"limit": 50})
            progress(f"one at a time: {(time.perf_counter() - began) / 200 * 1000:.2f} ms each")
            progress(f"{args.rate:g} req/s for {args.seconds:g} s")
            latencies, errors = asyncio.run(
                load(server.url, token, args.rate, args.seconds, args.connections))
        finally:
            server.close()
    print("| what | requests | errors | p50 | p95 | p99 | max |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    p50, p95, p99 = (percentile(latencies, q) * 1000 for q in (50, 95, 99))
    print(f"| GET /v2/streams at {args.rate:g} req/s ({args.streams} streams) | {len(latencies)} "
          f"| {errors} | {p50:.1f} ms | {p95:.1f} ms | {p99:.1f} ms "
          f"| {max(latencies) * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
