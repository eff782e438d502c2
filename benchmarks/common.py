"""What every benchmark needs: a running `vas up`, admin tokens, CPU accounting by PID."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.processes import VasProcess, clean_env, descendants, free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")
ADMIN_SECRET = "benchmark-admin-secret"  # noqa: S105 (a throwaway server of the benchmark)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_with(pid: int, marker: str) -> int:
    """The descendant of `pid` whose command line contains `marker`."""
    for child in descendants(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            return child
    raise LookupError(f"no child of {pid} runs {marker!r}")


def percentile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Server:
    """`vas up` on the embedded default in a temporary directory."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {"VAS_LOG_LEVEL": "WARNING", **env}  # a caller may ask for the default, INFO
        environment = clean_env(VAS_PORT=str(self.port), VAS_DATA_DIR=str(workdir / "var"),
                                VAS_ADMIN_CLIENT_SECRET=ADMIN_SECRET, **env)
        self.process = VasProcess("up", environment, workdir)
        self.process.wait_ready(self.url, timeout=600)  # a busy shared host starts slowly
        self.http = httpx.Client(base_url=self.url, timeout=60)
        token = self.http.post("/v2/auth/token", json={
            "client_id": "admin", "client_secret": ADMIN_SECRET}).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def media_node_pid(self) -> int:
        return child_with(self.process.proc.pid, "media-node")

    def close(self) -> None:
        self.http.close()
        self.process.interrupt()
