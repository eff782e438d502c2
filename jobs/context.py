"""What an actor running in a Dramatiq worker thread can reach: settings and the process loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dramatiq.errors import Retry

from core.settings import Settings

T = TypeVar("T")


@dataclass
class JobContext:
    """Installed once per worker or media-node process before its Dramatiq worker starts."""

    settings: Settings
    loop: asyncio.AbstractEventLoop
    node_id: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    stopping: bool = False
    _pending: set[concurrent.futures.Future[Any]] = field(default_factory=set)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coro` on the process loop from a worker thread and wait for it.

        A job cancelled because the process is stopping raises Dramatiq's `Retry`: the
        message runs again elsewhere, and a clean shutdown logs no error for it.
        """
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        self._pending.add(future)
        try:
            return future.result(timeout)
        except concurrent.futures.CancelledError:
            if self.stopping:
                raise Retry("the process is stopping; the job runs again", delay=1000) from None
            raise
        finally:
            self._pending.discard(future)

    def cancel_pending(self) -> None:
        """On shutdown: end the jobs still running, so their threads let the process exit.

        A cancelled job fails; Dramatiq retries it (on another worker) and the jobs are
        idempotent.
        """
        self.stopping = True
        for future in list(self._pending):
            future.cancel()


_current: JobContext | None = None


def install(context: JobContext | None) -> None:
    global _current
    _current = context


def current() -> JobContext:
    """The context of this process; actors fail loudly when run outside a VAS process."""
    if _current is None:
        raise RuntimeError("no job context installed in this process")
    return _current
