"""The database engine: SQLite for the embedded default, PostgreSQL in production."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import create_db_tables

from core.settings import DatabaseSettings
from core.stream_states import ACTIVE_STATES
from core.tables import TABLES

logger = logging.getLogger(__name__)


def make_engine(settings: DatabaseSettings) -> Engine[Any]:
    """An engine for `settings.url`, not yet connected."""
    if settings.is_postgres:
        return PostgresEngine(config={"dsn": settings.url})
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (api, worker, media node) share the file: WAL lets readers run
    # beside one writer, and the busy timeout makes writers wait instead of failing.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    return SQLiteEngine(path=str(path), timeout=30)


async def open_database(settings: DatabaseSettings, *, create: bool = True) -> Engine[Any]:
    """Bind every table to a new engine, create missing tables, start the pool."""
    engine = make_engine(settings)
    for table in TABLES:
        table._meta.db = engine
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=10)
    if create:
        await create_db_tables(*TABLES, if_not_exists=True)
        # At most one active stream per camera, enforced by the database itself.
        active = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES))
        await engine.run_ddl(
            "CREATE UNIQUE INDEX IF NOT EXISTS vas_stream_one_active_per_camera "
            f"ON vas_stream (camera_id) WHERE state IN ({active})"
        )
        await engine.run_ddl(
            "CREATE UNIQUE INDEX IF NOT EXISTS vas_producer_one_per_stream "
            "ON vas_producer (stream_id)"
        )
        await engine.run_ddl(
            "CREATE UNIQUE INDEX IF NOT EXISTS vas_hls_segment_name "
            "ON vas_hls_segment (stream_id, filename)"
        )
    return engine


async def close_database(engine: Engine[Any]) -> None:
    """Release the engine's connections."""
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


async def ping(engine: Engine[Any]) -> None:
    """Raise unless the database answers a trivial query."""
    await engine.run_ddl("SELECT 1")
