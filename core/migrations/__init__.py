"""Schema migrations: the Piccolo app of the VAS tables, migrated at startup under a lock.

The files beside this one are Piccolo migrations (`MigrationManager`), recorded as they run
in Piccolo's own `migration` table under the app name `vas`. `migrate(engine)` brings a
database up to date:

- a fresh database runs every migration;
- a database made by the release before migrations (its tables, no records) gets the
  `BASELINE` migrations recorded without running them, then runs the rest;
- an up-to-date database costs one look at the records and no lock.

Runs are serialised across processes: a `pg_advisory_lock` on PostgreSQL, an exclusive
`flock` on a file beside the database on SQLite. A process that waited finds nothing to do.

Piccolo's migration code finds its engine and app registry through a `piccolo_conf` module;
this package is that module (`DB`, `APP_REGISTRY`), so that no file on disk names an engine:
`DB` is the engine of the run in progress, or, for Piccolo's own CLI
(`PICCOLO_CONF=core.migrations piccolo migrations new vas --auto`), one made from the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import logging
import os
import pkgutil
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import ENVIRONMENT_VARIABLE, AppConfig, AppRegistry
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table, create_table_class

from core.errors import VasError
from core.tables import TABLES

logger = logging.getLogger(__name__)

APP_NAME = "vas"
APP_CONFIG = AppConfig(
    app_name=APP_NAME,
    migrations_folder_path=Path(__file__).parent,
    table_classes=list(TABLES),
)

# The migrations that make the schema of the release before migrations: its nine tables,
# then its three raw indexes.
BASELINE = ("2026-11-30T19:23:44:380541", "2026-11-30T19:25:01:012803")
# The tables that release created; all present and no records means "that release made it".
BASELINE_TABLES = (
    "vas_api_client", "vas_device", "vas_stream", "vas_producer", "vas_consumer",
    "vas_media_node", "vas_hls_segment", "vas_snapshot", "vas_bookmark",
)

# One key for every VAS process on a PostgreSQL database ("vasmigr" in ASCII).
ADVISORY_LOCK_KEY = 0x7661736D696772
# On SQLite, the lock is an flock on this file beside the database.
SQLITE_LOCK_SUFFIX = ".migrate-lock"
_SQLITE_LOCK_POLL_S = 0.05

_engine: ContextVar[Engine[Any] | None] = ContextVar("vas_migration_engine", default=None)


class MigrationError(VasError):
    """The database holds a schema that the migrations cannot bring up to date."""


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What one `migrate` call did: migrations recorded without running, and those run."""

    faked: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()


def __getattr__(name: str) -> Any:
    """`DB` and `APP_REGISTRY`, for Piccolo's migration code (this package is its conf)."""
    if name == "DB":
        engine = _engine.get()
        return _settings_engine() if engine is None else engine
    if name == "APP_REGISTRY":
        return _app_registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def _app_registry() -> AppRegistry:
    return AppRegistry(apps=[__name__])


@cache
def _settings_engine() -> Engine[Any]:
    # Only Piccolo's CLI gets here: a VAS process always migrates with its own engine.
    from core.db import make_engine
    from core.settings import get_settings

    return make_engine(get_settings().database)


@cache
def migration_modules() -> dict[str, ModuleType]:
    """The migration modules of this package by migration ID, in the order they run."""
    found: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        module = importlib.import_module(f"{__name__}.{info.name}")
        migration_id = getattr(module, "ID", None)
        if isinstance(migration_id, str):
            found[migration_id] = module
    return dict(sorted(found.items()))


def _ledger(engine: Engine[Any]) -> type[Table]:
    """Piccolo's `migration` table, bound to `engine`. (Piccolo's own class binds itself to
    the first engine it meets, for the life of the process.)"""
    columns = {c._meta.name: c.copy() for c in Migration._meta.non_default_columns}
    return create_table_class(
        "Migration", class_kwargs={"tablename": Migration._meta.tablename, "db": engine},
        class_members=columns,
    )


async def _recorded(ledger: type[Table]) -> set[str]:
    if not await ledger.table_exists():
        return set()
    name, app_name = (ledger._meta.get_column_by_name(c) for c in ("name", "app_name"))
    return {row["name"] for row in await ledger.select(name).where(app_name == APP_NAME)}


async def migrate(engine: Engine[Any]) -> MigrationReport:
    """Run the migrations `engine`'s database has not recorded (see the module docstring)."""
    ledger = _ledger(engine)
    known, recorded = set(migration_modules()), await _recorded(ledger)
    if known <= recorded:
        if recorded - known:
            # A newer release migrated this database (a rolling upgrade, or a downgrade).
            logger.warning("database has migrations this release does not know: %s",
                           ", ".join(sorted(recorded - known)))
        return MigrationReport()
    _use_this_module_as_piccolo_conf()
    async with _exclusive(engine):
        token = _engine.set(engine)
        try:
            report = await _run(engine, ledger)
        finally:
            _engine.reset(token)
    if report.faked:
        logger.info("database made by the release before migrations: recorded %s as applied",
                    ", ".join(report.faked))
    if report.applied:
        logger.info("database migrated: %s", ", ".join(report.applied))
    return report


async def _run(engine: Engine[Any], ledger: type[Table]) -> MigrationReport:
    await ledger.create_table(if_not_exists=True)
    done = await _recorded(ledger)
    faked: list[str] = []
    if not done and await _made_by_previous_release(ledger):
        for migration_id in BASELINE:
            await _record(ledger, migration_id)
        faked, done = list(BASELINE), set(BASELINE)
    applied: list[str] = []
    for migration_id, module in migration_modules().items():
        if migration_id in done:
            continue
        manager = await module.forwards()
        if not isinstance(manager, MigrationManager):
            raise MigrationError(f"migration {migration_id} returned no MigrationManager")
        # The migration and its record commit together (when the migration allows a
        # transaction at all); MigrationManager.run joins this transaction.
        transaction = (
            engine.transaction() if manager.wrap_in_transaction else contextlib.nullcontext()
        )
        async with transaction:
            await manager.run()
            print("ok", flush=True)  # ends the line Piccolo began: "- <id> [forwards]... "
            await _record(ledger, migration_id)
        applied.append(migration_id)
    return MigrationReport(faked=tuple(faked), applied=tuple(applied))


async def _record(ledger: type[Table], migration_id: str) -> None:
    await ledger.insert(ledger(name=migration_id, app_name=APP_NAME))


async def _made_by_previous_release(ledger: type[Table]) -> bool:
    """True when every table of that release exists; False when none does."""
    if isinstance(ledger._meta.db, PostgresEngine):
        sql = "SELECT table_name AS name FROM information_schema.tables " \
              "WHERE table_schema = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    existing = {row["name"] for row in await ledger.raw(sql)}
    present = existing & set(BASELINE_TABLES)
    if not present:
        return False
    if present != set(BASELINE_TABLES):
        missing = sorted(set(BASELINE_TABLES) - present)
        raise MigrationError(
            "the database has some VAS tables but no migration records, and lacks "
            f"{', '.join(missing)}: it was not made by a VAS release; refusing to migrate it"
        )
    return True


@contextlib.asynccontextmanager
async def _exclusive(engine: Engine[Any]) -> AsyncIterator[None]:
    """Hold the database's migration lock for the block."""
    if isinstance(engine, PostgresEngine):
        async with _advisory_lock(engine):
            yield
    elif isinstance(engine, SQLiteEngine):
        async with _file_lock(Path(f"{engine.path}{SQLITE_LOCK_SUFFIX}")):
            yield
    else:
        raise MigrationError(f"no migration lock for {type(engine).__name__}")


@contextlib.asynccontextmanager
async def _advisory_lock(engine: PostgresEngine) -> AsyncIterator[None]:
    # A connection of its own, outside the pool, holds the session-level lock; if this
    # process dies, the connection closes and the lock goes with it.
    connection = await engine.get_new_connection()
    try:
        if not await connection.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_LOCK_KEY):
            logger.info("another process is migrating the database; waiting for it")
            await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    # flock, not SQLite's own locks: the migration itself needs SQLite's write lock from
    # other connections. The lock belongs to this open file: closing it (or dying) frees it.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    logger.info("another process is migrating the database; waiting for it")
                    waiting = True
                await asyncio.sleep(_SQLITE_LOCK_POLL_S)
        yield
    finally:
        os.close(fd)


def _use_this_module_as_piccolo_conf() -> None:
    # Piccolo looks its engine up through the module PICCOLO_CONF names. Set once per
    # process, before the first migration needs it; a VAS process needs nothing else.
    if os.environ.get(ENVIRONMENT_VARIABLE) != __name__:
        os.environ[ENVIRONMENT_VARIABLE] = __name__

