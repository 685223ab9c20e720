"""Call endings that outlive their request: tracked tasks that cancellation cannot interrupt.

A stream ends after its handler has returned, and a client that disconnects
cancels the task that relays it, so a settlement or a release runs as a task of
its own. Each is kept here until it finishes, its failure logged, and shutdown
waits for all of them before the ledger closes.
"""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from proxy.server import request_log

logger = logging.getLogger("spu.metering")

T = TypeVar("T")


class Endings:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, ending: Coroutine[Any, Any, T]) -> "asyncio.Task[T]":
        """Run ``ending`` in the background; the request's log line waits for it."""
        task = asyncio.get_running_loop().create_task(ending)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        request_log.defer_until(task)
        return task

    def _done(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("metered call ending failed", exc_info=task.exception())

    async def drain(self, timeout_s: float) -> None:
        """Wait for every ending still running (graceful shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)
