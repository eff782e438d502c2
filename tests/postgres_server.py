"""A PostgreSQL of the test's own (the machine's binaries), on a loopback port and a data dir
of its own, that the test may stop and restart.

For outage tests: the shared PostgreSQL of the machine must stay up for everyone else.
`initdb` refuses to run as root, so the server runs as the `postgres` user (runuser) with
its data dir in a temp dir that user owns; trust auth on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.camera import unused_port

BIN = Path(os.environ.get("VAS_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


class PostgresServer:
    """`postgres` on 127.0.0.1:<port>; `stop()` and `start()` keep port and data."""

    def __init__(self) -> None:
        self.port = unused_port()
        self.root = Path(tempfile.mkdtemp(prefix="vas-pg-"))
        self.data = self.root / "data"
        account = pwd.getpwnam("postgres")
        os.chown(self.root, account.pw_uid, account.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(["runuser", "-u", "postgres", "--", str(BIN / tool), *args],
                                capture_output=True, text=True, check=False, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}")

    def start(self, timeout: float = 30.0) -> None:
        options = (f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off "
                   "-c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "log"), "-w", "-t", str(int(timeout)), "start")

    def stop(self) -> None:
        """Stop at once (open connections are cut, as when the server goes away)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def accepting(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def remove(self) -> None:
        if self.accepting():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
