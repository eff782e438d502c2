"""The database engine: SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

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
    return SQLiteEngine(path=str(path), timeout=SQLITE_BUSY_TIMEOUT_S)


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
