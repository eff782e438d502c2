"""Schema migrations on a real SQLite file and a real PostgreSQL database.

A database made by the previous release (tests/db/previous_release.py) is upgraded without
losing a row; a fresh one gets the schema the tables declare; runs are idempotent and
serialised across connections and processes.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from core.db import close_database, make_engine, open_database
from core.migrations import (
    ADVISORY_LOCK_KEY,
    BASELINE,
    SQLITE_LOCK_SUFFIX,
    MigrationError,
    MigrationReport,
    migrate,
    migration_modules,
)
from core.settings import DatabaseSettings
from core.tables import TABLES, Device, Stream
from tests.conftest import _new_database
from tests.db import catalog, previous_release

ALL = tuple(migration_modules())
NEW = tuple(i for i in ALL if i not in BASELINE)
RAW_INDEXES = {"vas_stream_one_active_per_camera", "vas_producer_one_per_stream",
               "vas_hls_segment_name"}
NOW = datetime(2026, 11, 2, 9, 30, 15, 250000, tzinfo=UTC)
CAMERA, STREAM = uuid.UUID(int=0xCA), uuid.UUID(int=0x57)


@pytest.fixture
def db_settings(backend: str, tmp_path: Path) -> Iterator[DatabaseSettings]:
    """An empty database of the test's own on `backend`."""
    if backend == "sqlite":
        yield DatabaseSettings(url=f"sqlite:///{tmp_path / 'vas.sqlite3'}")
    else:
        for url in _new_database():
            yield DatabaseSettings(url=url)


@pytest.fixture
def other_db_settings(backend: str, tmp_path: Path) -> Iterator[DatabaseSettings]:
    """A second empty database on the same backend."""
    if backend == "sqlite":
        yield DatabaseSettings(url=f"sqlite:///{tmp_path / 'other' / 'vas.sqlite3'}")
    else:
        for url in _new_database():
            yield DatabaseSettings(url=url)


@pytest.fixture
async def previous_release_db(db_settings: DatabaseSettings) -> AsyncIterator[
    dict[str, list[dict[str, Any]]]
]:
    """`db_settings`' database as the previous release left it: its schema, made its way,
    and one row in every table. Yields the rows by table name, as Piccolo reads them."""
    engine = make_engine(db_settings)
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=2)
    try:
        await previous_release.create_schema(engine)
        rows = await _insert_previous_release_rows()
    finally:
        await close_database(engine)
    yield rows


async def _insert_previous_release_rows() -> dict[str, list[dict[str, Any]]]:
    p = previous_release
    later = NOW + timedelta(seconds=6)
    rows: list[Table] = [
        p.ApiClient(client_id="ruth-ai", secret_hash="pbkdf2$salt$hash", scopes=["streams:read"],
                    created_at=NOW, refresh_token_hash="f" * 64,
                    refresh_expires_at=NOW + timedelta(days=7)),
        p.Device(id=CAMERA, name="Gate", description="north gate",
                 rtsp_url="rtsp://cam.example/live", rtsp_secret="sealed", rtsp_transport="udp",
                 location="gate", is_active=True, created_at=NOW, updated_at=later),
        p.Stream(id=STREAM, camera_id=CAMERA, name="Gate", state="LIVE", last_error="blip",
                 codec_config={"video": "h264"}, metrics={"fps": 25}, checked_at=later,
                 node_id="node-1", lease_expires_at=later, created_at=NOW, updated_at=later,
                 started_at=NOW, stopped_at=None),
        p.Producer(id=uuid.UUID(int=1), stream_id=STREAM, mediasoup_id="prod-1",
                   transport_id="tr-1", state="active", ssrc=123456789, created_at=NOW),
        p.Consumer(id=uuid.UUID(int=2), stream_id=STREAM, client_id="ruth-ai", state="connected",
                   transport_id="tr-2", created_at=NOW, last_seen_at=later, closed_at=None),
        p.MediaNode(node_id="node-1", queue_name="vas.node.node-1", capacity=8, streams=1,
                    started_at=NOW, heartbeat_at=later),
        p.HlsSegment(stream_id=STREAM, sequence=41, filename="seg-41.ts", start_at=NOW,
                     end_at=later, duration=6.006, size=3_000_000, discontinuity=True),
        p.Snapshot(id=uuid.UUID(int=3), stream_id=STREAM, timestamp=NOW, source="live",
                   created_by="ruth-ai", format="jpg", file_size=120_000, width=1920,
                   height=1080, metadata={"k": "v"}, status="ready", error=None, attempts=1,
                   created_at=NOW, updated_at=later),
        p.Bookmark(id=uuid.UUID(int=4), stream_id=STREAM, center_timestamp=NOW,
                   start_time=NOW - timedelta(seconds=5), end_time=later, source="live",
                   label="person at gate", created_by="ruth-ai", event_type="person",
                   confidence=0.87, tags=["gate"], metadata={"zone": 2}, status="ready",
                   error=None, video_size=4_000_000, attempts=1, created_at=NOW,
                   updated_at=later),
    ]
    for row in rows:
        await type(row).insert(row)
    return {t._meta.tablename: await t.select() for t in p.TABLES}


def _is_unique_violation(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError | asyncpg.UniqueViolationError)


async def test_upgrade_from_previous_release(
    previous_release_db: dict[str, list[dict[str, Any]]], db_settings: DatabaseSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert "migration" not in await catalog.tables(db_settings)
    caplog.set_level(logging.INFO, logger="core.migrations")

    engine = await open_database(db_settings)
    try:
        # Every row intact; the new column is there, NULL on the old stream.
        for table in TABLES:
            after = await table.select()
            if table._meta.tablename not in previous_release_db:
                assert after == [], table._meta.tablename  # a table this release added
                continue
            if table is Stream:
                assert [r.pop("error_code") for r in after] == [None]
            if table is Device:  # the OmniSight camera fields: NULL on the old camera
                assert [(r.pop("ip_address"), r.pop("model"), r.pop("settings"))
                        for r in after] == [(None, None, None)]
            assert after == previous_release_db[table._meta.tablename], table._meta.tablename
        assert all(len(rows) == 1 for rows in previous_release_db.values())

        # The previous release's migrations were recorded without running, the rest ran.
        assert await catalog.ledger(db_settings) == list(ALL)
        assert f"recorded {', '.join(BASELINE)} as applied" in caplog.text
        assert f"database migrated: {', '.join(NEW)}" in caplog.text

        # The new column is writable.
        await Stream.update({Stream.error_code: "RTSP_TIMEOUT"}).where(Stream.id == STREAM)
        assert await Stream.select(Stream.error_code).where(Stream.id == STREAM).first() == {
            "error_code": "RTSP_TIMEOUT"
        }

        # The partial unique index still allows one active stream per camera, and only one.
        def stream(state: str) -> Stream:
            return Stream(id=uuid.uuid4(), camera_id=CAMERA, name="Gate", state=state,
                          created_at=NOW, updated_at=NOW)

        with pytest.raises(Exception) as refused:
            await Stream.insert(stream("INITIALIZING"))
        assert _is_unique_violation(refused.value), repr(refused.value)
        await Stream.insert(stream("STOPPED"))
        assert await Stream.count().where(Stream.camera_id == CAMERA) == 2
    finally:
        await close_database(engine)


async def test_upgraded_schema_is_the_fresh_schema(
    previous_release_db: dict[str, list[dict[str, Any]]], db_settings: DatabaseSettings,
    other_db_settings: DatabaseSettings,
) -> None:
    """The first migrations make exactly what the previous release made: upgrading its
    database and migrating an empty one end with the same schema, index for index."""
    for settings in (db_settings, other_db_settings):
        await close_database(await open_database(settings))
    upgraded, fresh = await catalog.schema(db_settings), await catalog.schema(other_db_settings)
    assert upgraded == fresh
    assert all(any(name in str(row) for row in fresh) for name in RAW_INDEXES)


async def test_fresh_database_gets_the_declared_schema(db_settings: DatabaseSettings) -> None:
    await close_database(await open_database(db_settings))

    assert await catalog.ledger(db_settings) == list(ALL)
    assert await catalog.tables(db_settings) == {t._meta.tablename for t in TABLES} | {"migration"}
    for table in TABLES:
        declared = [c._meta.db_column_name for c in table._meta.columns]
        assert sorted(await catalog.columns(db_settings, table._meta.tablename)) == sorted(
            declared
        ), table._meta.tablename
    assert set(await catalog.indexes(db_settings)) >= RAW_INDEXES


async def test_up_to_date_database_runs_nothing_and_takes_no_lock(
    db_settings: DatabaseSettings,
) -> None:
    await close_database(await open_database(db_settings))
    async with _hold_migration_lock(db_settings):
        engine = await asyncio.wait_for(open_database(db_settings, create=False), 10)
        try:
            # With the lock held elsewhere, only the no-lock path can return.
            assert await asyncio.wait_for(migrate(engine), 10) == MigrationReport()
        finally:
            await close_database(engine)
        await close_database(await asyncio.wait_for(open_database(db_settings), 10))
    assert await catalog.ledger(db_settings) == list(ALL)


async def test_records_of_a_newer_release_are_tolerated(
    db_settings: DatabaseSettings, caplog: pytest.LogCaptureFixture,
) -> None:
    """A newer release migrated the database (rolling upgrade): this one starts, and says so."""
    await close_database(await open_database(db_settings))
    newer = "2099-01-01T00:00:00:000000"
    engine = await open_database(db_settings, create=False)
    try:
        await engine.run_ddl(
            f"INSERT INTO migration (name, app_name, ran_on) VALUES ('{newer}', 'vas', "
            "CURRENT_TIMESTAMP)"
        )
    finally:
        await close_database(engine)
    caplog.set_level(logging.INFO, logger="core.migrations")
    await close_database(await open_database(db_settings))
    assert f"database has migrations this release does not know: {newer}" in caplog.text
    assert await catalog.ledger(db_settings) == [*ALL, newer]


async def test_a_migration_waits_for_the_lock(db_settings: DatabaseSettings) -> None:
    engine = await open_database(db_settings, create=False)
    try:
        async with _hold_migration_lock(db_settings):
            run = asyncio.create_task(migrate(engine))
            await asyncio.sleep(0.5)
            assert not run.done()
            assert "vas_stream" not in await catalog.tables(db_settings)
        report = await asyncio.wait_for(run, 30)
    finally:
        await close_database(engine)
    assert report == MigrationReport(applied=ALL)
    assert await catalog.ledger(db_settings) == list(ALL)


async def test_concurrent_open_database_migrates_once(db_settings: DatabaseSettings) -> None:
    engines = await asyncio.gather(*(open_database(db_settings) for _ in range(2)))
    for engine in engines:
        await close_database(engine)
    assert await catalog.ledger(db_settings) == list(ALL)


async def test_concurrent_migrations_run_once(other_db_settings: DatabaseSettings) -> None:
    engines = [await open_database(other_db_settings, create=False) for _ in range(3)]
    try:
        reports = await asyncio.gather(*(migrate(e) for e in engines))
    finally:
        for engine in engines:
            await close_database(engine)
    assert sorted(reports, key=lambda r: len(r.applied)) == [
        MigrationReport(), MigrationReport(), MigrationReport(applied=ALL)
    ]
    assert await catalog.ledger(other_db_settings) == list(ALL)


MIGRATE_IN_A_PROCESS = """
import asyncio, sys
from core.db import close_database, open_database
from core.migrations import migrate
from core.settings import DatabaseSettings

async def main():
    engine = await open_database(DatabaseSettings(url=sys.argv[1]), create=False)
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        report = await migrate(engine)
    finally:
        await close_database(engine)
    print("report", ",".join(report.faked), ",".join(report.applied), flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
def test_processes_starting_together_migrate_once(db_settings: DatabaseSettings) -> None:
    """Three processes (no PICCOLO_CONF in their environment) migrate one fresh database at
    the same moment: one applies every migration, the others wait and find nothing to do."""
    env = {k: v for k, v in os.environ.items() if k != "PICCOLO_CONF"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_IN_A_PROCESS, db_settings.url], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for _ in range(3)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # all imported and connected: start them together
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    reports = sorted(line for out in outputs for line in out.splitlines()
                     if line.startswith("report"))
    assert reports == ["report  ", "report  ", f"report  {','.join(ALL)}"], outputs
    assert asyncio.run(catalog.ledger(db_settings)) == list(ALL)


async def test_some_tables_without_records_is_refused(db_settings: DatabaseSettings) -> None:
    """Tables of VAS but not all of them, and no records: not a database any release made;
    startup stops rather than guess."""
    engine = await open_database(db_settings, create=False)
    try:
        previous_release.Device._meta.db = engine
        await previous_release.Device.create_table()
    finally:
        await close_database(engine)
    with pytest.raises(MigrationError, match="lacks vas_api_client, vas_bookmark"):
        await open_database(db_settings)
    assert await catalog.ledger(db_settings) == []


def _hold_migration_lock(settings: DatabaseSettings) -> Any:
    """The migration lock, taken the way another VAS process would hold it."""
    return _PgLock(settings.url) if settings.is_postgres else _FileLock(
        Path(f"{settings.sqlite_path}{SQLITE_LOCK_SUFFIX}")
    )


class _PgLock:
    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> None:
        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)

    async def __aexit__(self, *exc: object) -> None:
        assert self.conn is not None
        await self.conn.close()


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    async def __aenter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    async def __aexit__(self, *exc: object) -> None:
        os.close(self.fd)
