"""API read latency under a fixed request rate: GET /v2/streams with a Bearer token.

    python -m benchmarks.api_reads --rate 500 --seconds 20 --streams 20

`vas up` (embedded default: SQLite + embedded Redis, one API process) with `--streams`
registered devices and streams. An open-loop load generator in this process sends requests
on a fixed schedule over `--connections` keep-alive connections; latency counts from the
scheduled send time, so a slow server cannot hide behind a slow generator.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import Server, percentile, progress


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", help="PostgreSQL instead of the embedded SQLite")
    parser.add_argument("--redis-url", help="Redis instead of the embedded one")
    args = parser.parse_args()
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
