"""The database engine: SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, dict_factory
from piccolo.querystring import QueryString

from core.migrations import migrate
from core.settings import DatabaseSettings
from core.tables import TABLES

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_S = 30


def make_engine(settings: DatabaseSettings) -> Engine[Any]:
    """An engine for `settings.url`, not yet connected."""
    if settings.is_postgres:
        return PostgresEngine(config={"dsn": settings.url})
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (api, worker, media node) share the file: WAL lets readers run
    # beside one writer, and the busy timeout makes writers wait instead of failing.
    _use_wal(path)
    return ReadingSQLiteEngine(path=str(path), timeout=SQLITE_BUSY_TIMEOUT_S)


_READ = re.compile(r"\s*SELECT\b", re.IGNORECASE)


class SQLiteReader:
    """One long-lived, read-only SQLite connection on a thread of its own.

    Piccolo's SQLite engine opens a new connection (and an aiosqlite thread) for every
    query, which cost a few milliseconds per query and made SQLite reads the API's
    bottleneck (docs/performance.md, "API reads"). Reads outside a transaction go here
    instead: one hop to this thread per query, the connection's page cache and prepared
    statements kept. In autocommit mode each SELECT is its own read transaction, ended when
    its rows are fetched, so every read sees what was committed before it started (by this
    process or another one: WAL). `query_only` refuses any write that would slip in.
    """

    def __init__(self, connection_kwargs: dict[str, Any]) -> None:
        self._kwargs = connection_kwargs
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None

    def _fetch(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        if self._connection is None:
            connection = sqlite3.connect(**self._kwargs, check_same_thread=False)
            connection.row_factory = dict_factory
            connection.execute("PRAGMA query_only = 1")
            self._connection = connection
        cursor = self._connection.execute(sql, args)
        try:
            rows: list[dict[str, Any]] = cursor.fetchall()
            return rows
        finally:
            cursor.close()

    async def fetch(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reads")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._fetch, sql, args)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        """Close the connection and end the thread (a later read opens them again)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(self._close)
            executor.shutdown(wait=True)


class ReadingSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine with its reads on a long-lived connection (`SQLiteReader`);
    writes and transactions keep a connection of their own, as before."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reader = SQLiteReader(self.connection_kwargs)

    async def run_querystring(self, querystring: QueryString, in_pool: bool = False) -> Any:
        if self.current_transaction.get() is None and not self.log_queries:
            query, args = querystring.compile_string(engine_type=self.engine_type)
            if _READ.match(query):
                return await self.reader.fetch(query, args)
        return await super().run_querystring(querystring, in_pool)


def _use_wal(path: Path) -> None:
    """Put the file in WAL mode (it stays so). Processes starting together on a new file
    race for this switch, and SQLite answers the losers "database is locked" at once,
    without waiting out its busy timeout: try again until the switch is made."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)) as db:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


async def open_database(settings: DatabaseSettings, *, create: bool = True) -> Engine[Any]:
    """Bind every table to a new engine, start the pool, and (`create`) bring the schema
    up to date with the migrations of `core.migrations`."""
    engine = make_engine(settings)
    for table in TABLES:
        table._meta.db = engine
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=10)
    if create:
        try:
            await migrate(engine)
        except BaseException:
            await close_database(engine)
            raise
    return engine


async def close_database(engine: Engine[Any]) -> None:
    """Release the engine's connections."""
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()
    elif isinstance(engine, ReadingSQLiteEngine):
        await asyncio.to_thread(engine.reader.close)


async def ping(engine: Engine[Any]) -> None:
    """Raise unless the database answers a trivial query."""
    await engine.run_ddl("SELECT 1")
