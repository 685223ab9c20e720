"""Group commit: one writer thread runs many ledger operations per SQLite transaction.

Why not aiosqlite: it runs one statement at a time on a thread and commits
per call, so every hold would pay its own fsync. Durable and fast needs the
opposite: operations queue up while the previous commit's fsync is under way,
and the next transaction takes all of them (bounded by ``max_batch``). Each
operation runs inside its own SAVEPOINT, so one that fails leaves no partial
write and does not disturb its neighbours in the batch.
"""

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ledger.errors import LedgerUnavailable

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]


@dataclass(slots=True)
class _Job(Generic[T]):
    operation: Operation[T]
    future: "asyncio.Future[T]"
    loop: asyncio.AbstractEventLoop


def _resolve(future: "asyncio.Future[Any]", result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class GroupCommitWriter:
    """Owns the process's only write connection; callers submit operations and await them."""

    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, max_batch: int = 256, max_queue: int = 10_000
    ) -> None:
        self._connect = connect
        self._max_batch = max_batch
        self._jobs: queue.Queue[_Job[Any] | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise LedgerUnavailable(f"cannot open the ledger: {self._start_error}")

    def stop(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join()
        self._thread = None

    async def run(self, operation: Operation[T]) -> T:
        """Run ``operation`` in the next transaction; it commits before this returns."""
        if self._thread is None:
            raise LedgerUnavailable("the ledger writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        try:
            self._jobs.put_nowait(_Job(operation, future, loop))
        except queue.Full as full:
            raise LedgerUnavailable("the ledger write queue is full") from full
        # Shielded: a caller that goes away (client disconnect) must not abandon a
        # write that is already queued; the operation commits regardless.
        return await asyncio.shield(future)

    def _run(self) -> None:
        try:
            connection = self._connect()
        except BaseException as error:  # reported to start(), which raises it
            self._start_error = error
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                first = self._jobs.get()
                if first is None:
                    return
                batch: list[_Job[Any]] = [first]
                stopping = False
                while len(batch) < self._max_batch:
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if job is None:
                        stopping = True
                        break
                    batch.append(job)
                self._commit_batch(connection, batch)
                if stopping:
                    return
        finally:
            connection.close()

    def _commit_batch(self, connection: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            failure = LedgerUnavailable(f"the ledger is busy or unreachable: {error}")
            outcomes = [(None, failure)] * len(batch)
        else:
            for job in batch:
                outcomes.append(self._run_one(connection, job.operation))
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                connection.rollback()
                failure = LedgerUnavailable(f"the ledger could not commit: {error}")
                outcomes = [(None, failure)] * len(batch)
        for job, (result, error) in zip(batch, outcomes, strict=True):
            try:
                job.loop.call_soon_threadsafe(_resolve, job.future, result, error)
            except RuntimeError:
                continue  # that caller's event loop has closed; the write stands


    @staticmethod
    def _run_one(
        connection: sqlite3.Connection, operation: Operation[Any]
    ) -> tuple[Any, BaseException | None]:
        connection.execute("SAVEPOINT op")
        try:
            result = operation(connection)
        except Exception as error:
            connection.execute("ROLLBACK TO op")
            connection.execute("RELEASE op")
            return None, error
        connection.execute("RELEASE op")
        return result, None
