"""The PostgreSQL of a benchmark: a fresh database on the machine's server, or a private
cluster when that server does not answer; and the cleanup of a Redis namespace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import _new_database
from tests.e2e.processes import free_port

PRIVATE_POSTMASTER: list[int] = []  # the private cluster's postmaster while it runs

@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A fresh database on `server_url`'s server; dropped on exit."""
    yield from _new_database(server_url, "vas_bench")


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of this benchmark's own (Debian's binaries, user `postgres`),
    on a free 127.0.0.1 port, with default settings; stopped and removed on exit. Used
    when the machine's PostgreSQL does not answer."""
    import pwd
    import shutil

    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    owner = pwd.getpwnam("postgres")
    root = Path(tempfile.mkdtemp(prefix="vas-bench-pg-"))
    os.chown(root, owner.pw_uid, owner.pw_gid)
    data, port = root / "data", free_port()
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8"], user="postgres", check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root}"
    try:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "log"),
                        "-o", options, "start"], user="postgres", check=True,
                       capture_output=True)
        PRIVATE_POSTMASTER[:] = [int((data / "postmaster.pid").read_text().split()[0])]
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop"],
                       user="postgres", check=False, capture_output=True)
        PRIVATE_POSTMASTER.clear()
        shutil.rmtree(root, ignore_errors=True)


def postgres_answers(url: str) -> str | None:
    """None when `url` accepts a connection, else the error."""
    import asyncpg

    async def probe() -> None:
        connection = await asyncpg.connect(url, timeout=5)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure means: use a private cluster
        return f"{type(exc).__name__}: {exc}"
    return None


def drop_redis_namespace(redis_url: str, namespace: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
