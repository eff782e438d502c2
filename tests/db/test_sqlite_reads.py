"""SQLite reads on the engine's long-lived connection: they see what other connections
(other processes) committed, writes never go through it, transactions keep their own."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from core.db import ReadingSQLiteEngine, close_database, open_database
from core.settings import DatabaseSettings
from core.tables import ApiClient


async def test_reads_see_other_connections_commits_and_refuse_writes(tmp_path: Path) -> None:
    path = tmp_path / "vas.sqlite3"
    engine = await open_database(DatabaseSettings(url=f"sqlite:///{path}"))
    try:
        assert isinstance(engine, ReadingSQLiteEngine)
        assert await ApiClient.count() == 0
        # Another connection (as another process would) commits a row: the next read sees it.
        with sqlite3.connect(path) as other:
            other.execute("INSERT INTO vas_api_client (client_id, secret_hash, scopes) "
                          "VALUES ('elsewhere', 'x', '[]')")
        assert await ApiClient.exists().where(ApiClient.client_id == "elsewhere")
        # Writes through Piccolo still work (their own connection) and are read back at once.
        name = f"c-{uuid.uuid4().hex[:6]}"
        await ApiClient.insert(ApiClient(client_id=name, secret_hash="y", scopes=[]))
        assert await ApiClient.count() == 2
        async with engine.transaction():
            await ApiClient.delete().where(ApiClient.client_id == name)
            assert await ApiClient.count() == 1  # inside the transaction: its connection
        assert await ApiClient.count() == 1
        # The read connection itself refuses a write.
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await engine.reader.fetch("DELETE FROM vas_api_client", [])
    finally:
        await close_database(engine)
    assert await ApiClient.count() == 1  # a read after close opens the connection again
    await close_database(engine)


async def test_a_read_answered_busy_is_done_again_on_the_waiting_connection(
        tmp_path: Path) -> None:
    path = tmp_path / "vas.sqlite3"
    engine = await open_database(DatabaseSettings(url=f"sqlite:///{path}"))
    try:
        assert isinstance(engine, ReadingSQLiteEngine)
        assert await ApiClient.count() == 0

        class Busy:  # what the inline connection answers while another one holds the lock
            def execute(self, *_: object) -> None:
                raise sqlite3.OperationalError("database is locked")

            def close(self) -> None:
                pass

        engine.reader._inline = Busy()  # type: ignore[assignment]
        assert await ApiClient.count() == 0  # answered by the thread's connection
        engine.reader._inline = None
    finally:
        await close_database(engine)
