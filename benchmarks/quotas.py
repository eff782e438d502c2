"""What a per-caller bound costs a request: `CallerQuota.check` and `admit` (core/quotas.py)
for a caller that already holds N open consumers, on the real Redis and database.

    python -m benchmarks.quotas [--open 200] [--rounds 200]
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/0]

Without `--database-url`, a SQLite file in a temp dir. Rows are written under a Redis
namespace of their own and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid

from redis.asyncio import Redis

from benchmarks.common import percentile
from core.consumers import ConsumerService, ConsumerState
from core.db import close_database, open_database
from core.quotas import CallerQuota
from core.settings import load_settings
from core.tables import Consumer


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"VAS_DATA_DIR": data_dir, "REDIS_URL": args.redis_url}
        if args.database_url:
            env["DATABASE_URL"] = args.database_url
        settings = load_settings(env)
        engine = await open_database(settings.database)
        redis = Redis.from_url(args.redis_url)
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        consumers = ConsumerService()
        quota = CallerQuota(redis, namespace, "consumers", args.open + args.rounds + 1,
                            in_flight=consumers.open_among, setting="BENCH", what="consumers",
                            retry_after_s=1)
        stream = uuid.uuid4()
        made: list[uuid.UUID] = []
        try:
            for _ in range(args.open):
                made.append(uuid.uuid4())
                await consumers.add(made[-1], stream, "bench", ConsumerState.NEW, "t")
                await quota.admit("client:bench", made[-1])
            checks, admits = [], []
            for _ in range(args.rounds):
                started = time.perf_counter()
                await quota.check("client:bench")
                checks.append(time.perf_counter() - started)
                made.append(uuid.uuid4())
                await consumers.add(made[-1], stream, "bench", ConsumerState.NEW, "t")
                started = time.perf_counter()
                await quota.admit("client:bench", made[-1])
                admits.append(time.perf_counter() - started)
                await consumers.close(made[-1])  # stay at --open open consumers
            for name, values in (("check", checks), ("admit", admits)):
                print(f"{name}: p50 {percentile(values, 50) * 1000:.2f} ms, "
                      f"p99 {percentile(values, 99) * 1000:.2f} ms "
                      f"({args.open} open, {len(values)} rounds, "
                      f"{'PostgreSQL' if args.database_url else 'SQLite'})")
        finally:
            await Consumer.delete().where(Consumer.stream_id == stream)
            keys = [k async for k in redis.scan_iter(f"{namespace}:*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
            await close_database(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
