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

import asyncpg  # type: ignore[import-untyped]
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
    """Long-lived, read-only SQLite connections for the reads of one process.

    Piccolo's SQLite engine opens a new connection (and an aiosqlite thread) for every
    query, which cost a few milliseconds per query and made SQLite reads the API's
    bottleneck (docs/performance.md, "API reads"). Reads outside a transaction come here
    instead and run on the event loop's own thread, on a connection that never waits for a
    lock (busy timeout 0): a WAL reader does not wait for writers, and the API's reads are
    small (a page of rows), so this costs less than a hop to another thread, whose GIL
    hand-offs made a single reader thread the bottleneck under concurrent requests. In the
    rare case SQLite answers "busy" (another connection recovering or checkpointing the
    WAL), the read is done again on a thread of its own with the normal busy timeout.
    In autocommit mode each SELECT is its own read transaction, ended when its rows are
    fetched, so every read sees what was committed before it started (by this process or
    another one). `query_only` refuses any write that would slip in.
    """

    def __init__(self, connection_kwargs: dict[str, Any]) -> None:
        self._kwargs = connection_kwargs
        self._executor: ThreadPoolExecutor | None = None
        self._inline: sqlite3.Connection | None = None
        self._waiting: sqlite3.Connection | None = None

    def _connect(self, timeout: float) -> sqlite3.Connection:
        connection: sqlite3.Connection = sqlite3.connect(**{**self._kwargs, "timeout": timeout},
                                                         check_same_thread=False)
        connection.row_factory = dict_factory
        connection.execute("PRAGMA query_only = 1")
        return connection

    @staticmethod
    def _run(connection: sqlite3.Connection, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        cursor = connection.execute(sql, args)
        try:
            rows: list[dict[str, Any]] = cursor.fetchall()
            return rows
        finally:
            cursor.close()

    def _fetch_waiting(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        if self._waiting is None:
            self._waiting = self._connect(self._kwargs.get("timeout", 5.0))
        return self._run(self._waiting, sql, args)

    async def fetch(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        if self._inline is None:
            self._inline = self._connect(0)
        try:
            return self._run(self._inline, sql, args)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reads")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._fetch_waiting, sql, args)

    def _close_waiting(self) -> None:
        if self._waiting is not None:
            self._waiting.close()
            self._waiting = None

    def close(self) -> None:
        """Close the connections and end the thread (a later read opens them again)."""
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(self._close_waiting)
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


def database_unreachable(exc: BaseException) -> bool:
    """True for the errors of a database that is away: refused or cut connections, a server
    shutting down or starting up (the API answers 503, the media node retries)."""
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        # A file error is no outage; asyncio reports a refused host name of several
        # addresses as a plain OSError "Multiple exceptions: [Errno 111] Connect call failed".
        return "Connect call failed" in str(exc)
    return isinstance(exc, (
        ConnectionError,  # refused, reset, aborted
        asyncpg.PostgresConnectionError,  # class 08
        asyncpg.CannotConnectNowError,
        asyncpg.AdminShutdownError,
        asyncpg.CrashShutdownError,
        asyncpg.ConnectionDoesNotExistError,
        asyncpg.InterfaceError,  # "connection is closed"
    ))
