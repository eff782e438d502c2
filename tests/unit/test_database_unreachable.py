"""Which errors mean "the database is away" (503, retried) and which are bugs (500)."""

from __future__ import annotations

import asyncpg
import pytest

from core.db import database_unreachable


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5)"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InterfaceError("connection is closed"),
])
def test_an_absent_database(exc: BaseException) -> None:
    assert database_unreachable(exc)


@pytest.mark.parametrize("exc", [
    FileNotFoundError(2, "No such file or directory"),
    OSError(28, "No space left on device"),
    TimeoutError(),
    ValueError("bug"),
    asyncpg.UniqueViolationError("duplicate key"),
])
def test_other_errors(exc: BaseException) -> None:
    assert not database_unreachable(exc)
