"""CPU time per API read, in process: a figure that the host's load barely moves.

    python -m benchmarks.api_cpu [--requests 300] [--backends sqlite postgres]

The app (`api.app.create_app`, real database, real Redis at `--redis-url` in a namespace of
its own) runs in this process behind httpx's ASGI transport: no sockets, no uvicorn. With 50
devices (POST /api/v1/devices) and 50 streams (written through `StreamService`, moved to
STOPPED), `--requests` sequential GETs of /v2/streams?limit=50 and of /api/v1/devices with a
Bearer token, and of a one-route Litestar "hello" app beside them; reported: CPU time of the
process (`time.process_time`, every thread: the client's side of httpx included, the same
for every row) and wall time per request. On a shared host the wall time includes waiting
for a core; the CPU time does not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
import uuid
from typing import Any

import asyncpg
import httpx
from litestar import Litestar, get

from api.app import create_app
from benchmarks.bench_postgres import drop_redis_namespace
from core.settings import load_settings
from core.stream_states import StreamState
from core.streams import StreamService

SECRET = "benchmark-admin-secret-0123456789"  # noqa: S105 (a throwaway app of the benchmark)


@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"hello": "world"}


async def per_request(http: httpx.AsyncClient, path: str, headers: dict[str, str],
                      n: int) -> dict[str, float]:
    for _ in range(30):  # warm-up
        await http.get(path, headers=headers)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        answer = await http.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
    return {"cpu_ms": (time.process_time() - cpu) / n * 1000,
            "wall_ms": (time.perf_counter() - wall) / n * 1000}


async def run(backend: str, n: int, postgres_url: str, redis_url: str) -> dict[str, Any]:
    result: dict[str, Any] = {"backend": backend}
    transport = httpx.ASGITransport(app=Litestar([hello]))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        result["hello"] = await per_request(http, "/hello", {}, n)
    namespace = f"vas-bench-{uuid.uuid4().hex[:8]}"
    env = {"VAS_DATA_DIR": tempfile.mkdtemp(prefix="vas-api-cpu-"), "VAS_ADMIN_CLIENT_ID": "admin",
           "VAS_ADMIN_CLIENT_SECRET": SECRET, "VAS_REDIS_NAMESPACE": namespace,
           "REDIS_URL": redis_url}
    database = None
    if backend == "postgres":
        database = f"vas_bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(postgres_url)
        await admin.execute(f'CREATE DATABASE "{database}"')
        await admin.close()
        env["DATABASE_URL"] = f"{postgres_url.rpartition('/')[0]}/{database}"
    app = create_app(load_settings(env))
    try:
        async with app.lifespan(), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
            token = (await http.post("/v2/auth/token", json={
                "client_id": "admin", "client_secret": SECRET})).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            streams = StreamService()
            for index in range(50):
                device = (await http.post("/api/v1/devices", headers=headers, json={
                    "name": f"camera {index}", "rtsp_url": f"rtsp://127.0.0.1:9/c{index}"})).json()
                row, _ = await streams.create(uuid.UUID(device["id"]))
                await streams.transition(row.id, StreamState.STOPPED)
            result["streams"] = await per_request(http, "/v2/streams?limit=50", headers, n)
            result["devices"] = await per_request(http, "/api/v1/devices", headers, n)
    finally:
        drop_redis_namespace(redis_url, namespace)
        if database is not None:
            admin = await asyncpg.connect(postgres_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    logging.disable(logging.INFO)  # the app's and httpx's per-request INFO lines
    print("| database | route | CPU per request | wall per request |")
    print("| --- | --- | --- | --- |")
    for backend in args.backends:
        result = asyncio.run(run(backend, args.requests, args.postgres_url, args.redis_url))
        for route in ("hello", "streams", "devices"):
            label = {"hello": "hello (Litestar, no DB, no auth)",
                     "streams": "GET /v2/streams?limit=50", "devices": "GET /api/v1/devices"}
            print(f"| {backend} | {label[route]} | {result[route]['cpu_ms']:.2f} ms "
                  f"| {result[route]['wall_ms']:.2f} ms |")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
