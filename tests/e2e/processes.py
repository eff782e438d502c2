"""Run `vas` commands as a user would, and check that they leave nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

VAS = str(Path(sys.executable).parent / "vas")
SCRUBBED = ("REDIS_URL", "DATABASE_URL", "JWT_SECRET_KEY", "VAS_CREDENTIALS_KEY", "VAS_ENV",
            "VAS_ADMIN_CLIENT_ID", "VAS_ADMIN_CLIENT_SECRET", "VAS_PORT", "VAS_DATA_DIR",
            "VAS_V1_AUTH", "VAS_REDIS_NAMESPACE", "VAS_ADMIN_EMAIL", "VAS_ADMIN_PASSWORD",
            "VAS_OPEN_REGISTRATION")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(overrides)
    return env


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class VasProcess:
    """`vas <command>` in a subprocess, its output collected line by line (and written to
    `log` as it comes, when given)."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path,
                 log: Path | None = None) -> None:
        self.proc = subprocess.Popen(
            [VAS, command], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._log = log
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self._log, "a", buffering=1) if self._log else contextlib.nullcontext() as log:
            for line in self.proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if log is not None:
                    log.write(line)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, base_url: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"vas exited early ({self.proc.returncode}):\n{self.output}")
            try:
                if httpx.get(f"{base_url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"vas not ready in {timeout} s:\n{self.output}")

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(timeout=5)


def kill_pids(pids: Sequence[int] | set[int], grace: float = 3.0) -> None:
    """SIGTERM each PID, SIGKILL whatever is still there after ``grace`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    remaining = set(pids)
    while remaining and time.monotonic() < deadline:
        remaining = {pid for pid in remaining if alive(pid)}
        time.sleep(0.05)
    for pid in remaining:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM ``process`` and its descendants, SIGKILL after ``timeout``; return its code."""
    tree = descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    leftover = {pid for pid in tree if alive(pid)}
    if leftover:
        kill_pids(leftover)
    return process.returncode
