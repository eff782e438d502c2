"""Running a blocking call on a daemon thread of its own, with an asyncio future for it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


def run_in_daemon_thread(
    loop: asyncio.AbstractEventLoop,
    name: str,
    function: Callable[[], T],
    discard: Callable[[T], None] | None = None,
) -> asyncio.Future[T]:
    """Start ``function`` on a new daemon thread; its result or exception settles the future.

    A daemon thread, not an executor: executor threads are joined at interpreter exit,
    and one blocked in FFmpeg (or a loop nobody stopped) would keep the process alive.
    Cancelling the future does not interrupt ``function``; if it still produces a
    result nobody awaits any more (or the loop is gone), ``discard`` gets it, so that
    resources such as an open container are released.
    """
    future: asyncio.Future[T] = loop.create_future()

    def drop(result: T) -> None:
        if discard is not None:
            discard(result)

    def settle(outcome: tuple[bool, T | BaseException]) -> None:
        ok, value = outcome
        if future.done():  # the awaiting side gave up
            if ok:
                drop(value)  # type: ignore[arg-type]
        elif ok:
            future.set_result(value)  # type: ignore[arg-type]
        else:
            future.set_exception(value)  # type: ignore[arg-type]

    def target() -> None:
        outcome: tuple[bool, T | BaseException]
        try:
            outcome = (True, function())
        except BaseException as exc:
            outcome = (False, exc)
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:  # the event loop closed meanwhile
            if outcome[0]:
                drop(outcome[1])  # type: ignore[arg-type]

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
