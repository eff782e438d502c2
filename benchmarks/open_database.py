"""Startup cost of the database: `open_database` with migrations against the previous
release's way (`create_db_tables(if_not_exists=True)` and three raw indexes on every start).

    python -m benchmarks.open_database --runs 20

Each run, for each way in turn, makes a new SQLite file (and a new PostgreSQL database on
`--postgres-url`'s server), opens it (fresh: the schema is made), closes it and opens it
again (up to date). Times are whole `open_database` calls: engine, pool, schema.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from piccolo.engine.base import Engine
from piccolo.table import create_db_tables

from core.db import close_database, open_database
from core.migrations import BASELINE, migration_modules
from core.settings import DatabaseSettings
from core.tables import TABLES

Opener = Callable[[DatabaseSettings], Awaitable[Engine[Any]]]


async def with_migrations(settings: DatabaseSettings) -> Engine[Any]:
    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints each migration it runs
        return await open_database(settings)


async def previous_release_way(settings: DatabaseSettings) -> Engine[Any]:
    engine = await open_database(settings, create=False)
    await create_db_tables(*TABLES, if_not_exists=True)
    for statement in migration_modules()[BASELINE[-1]].INDEXES:
        await engine.run_ddl(statement)
    return engine


async def timed_opens(opener: Opener, settings: DatabaseSettings) -> tuple[float, float]:
    """Seconds to open `settings`' database fresh, then again up to date."""
    times = []
    for _ in range(2):
        start = time.perf_counter()
        engine = await opener(settings)
        times.append(time.perf_counter() - start)
        await close_database(engine)
    return times[0], times[1]


@contextlib.asynccontextmanager
async def sqlite_database(_: str) -> AsyncIterator[DatabaseSettings]:
    with tempfile.TemporaryDirectory() as tmp:
        yield DatabaseSettings(url=f"sqlite:///{Path(tmp) / 'vas.sqlite3'}")


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[DatabaseSettings]:
    name = f"vas_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield DatabaseSettings(url=f"{admin_url.rsplit('/', 1)[0]}/{name}")
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def row(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"| {label} | {statistics.median(ms):.1f} | {ms[0]:.1f} | {ms[-1]:.1f} | {len(ms)} |"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a database on the server where new databases may be created")
    args = parser.parse_args()
    ways: dict[str, Opener] = {
        "previous release": previous_release_way, "migrations": with_migrations,
    }
    print("| open_database | median ms | min ms | max ms | runs |")
    print("| --- | --- | --- | --- | --- |")
    for backend, database in (("SQLite", sqlite_database), ("PostgreSQL", postgres_database)):
        results: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
        for _ in range(args.runs):
            for way, opener in ways.items():  # alternate, so both see the same machine load
                async with database(args.postgres_url) as settings:
                    results[way].append(await timed_opens(opener, settings))
        for state, index in (("fresh", 0), ("up to date", 1)):
            for way in ways:
                print(row(f"{backend}, {state}, {way}", [r[index] for r in results[way]]))


if __name__ == "__main__":
    asyncio.run(main())
