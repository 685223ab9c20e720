"""Group commit: one writer thread runs many ledger operations per SQLite transaction.

Why not aiosqlite: it runs one statement at a time on a thread and commits
per call, so every hold would pay its own fsync. Durable and fast needs the
opposite: operations queue up while the previous commit's fsync is under way,
and the next transaction takes all of them (bounded by ``max_batch``). An
operation that fails leaves no partial write and does not disturb its
neighbours in the batch: failing before any write needs nothing undone, and a
batch in which one fails after writing is rolled back and run again with a
SAVEPOINT around each operation.

Results go back to the callers' event loops with one thread-safe wake-up per
loop per batch, not one per operation: each wake-up is a write to the loop's
self-pipe and a pass of its selector, which per operation would cost about as
much as the ledger work itself.

Group commit pays only when calls overlap. A lone caller gains nothing from
the thread and pays its two hand-offs (waking the writer, then waking the
caller's loop), about a fifth of a lone metered call's time in the gateway. So
a caller that knows no other write of its process is coming (``run(…,
inline=True)``; ``SqliteLedger`` knows, because it counts the calls its
process has underway) commits on its own thread, in the same kind of
transaction, provided the queue is empty, the connection is free and no
other process holds the write lock (the caller never waits for any of these;
its write then takes the queue). The caller's event loop is blocked for that
one commit, which is what it would have waited for anyway.

Durable and not: a transaction holding any durable operation commits with
``synchronous=FULL`` (the WAL is fsynced before anyone hears of the commit);
one of holds and releases alone (``Write.durable``) commits with ``NORMAL``:
no fsync, yet seen by every process at once and kept through a crash of this
one; the next durable commit's fsync (the WAL is written in order) or a
checkpoint takes it to disk. A metered call's hold thus costs no fsync of its
own, and its settlement one (shared with its whole batch).
"""

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ledger.errors import LedgerError, LedgerUnavailable

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]
_Job = tuple[Operation[Any], bool, "asyncio.Future[Any]", asyncio.AbstractEventLoop]
"""An operation, whether it is durable, and where its caller waits."""
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]

DEFAULT_MAX_BATCH = 512
DEFAULT_MAX_QUEUE = 10_000
DEFAULT_BUSY_TIMEOUT_S = 10.0
FIRST_BUSY_PAUSE_S = 0.000_05
MAX_BUSY_PAUSE_S = 0.000_2


def _resolve_all(outcomes: list[_Outcome]) -> None:
    """Runs on the caller's loop; a cancelled caller has gone away, its write stands."""
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is None:
            future.set_result(result)
        else:
            future.set_exception(error)


class GroupCommitWriter:
    """Owns the process's only write connection; callers submit operations and await them."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    ) -> None:
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be at least 1")
        self._connect = connect
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._busy_timeout_s = busy_timeout_s
        # SimpleQueue is the C-implemented queue; its bound is enforced in ``run``.
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._serving = False
        """True while the thread takes jobs; a plain flag, cheaper per call than is_alive()."""
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._connection: sqlite3.Connection | None = None
        self._connection_lock = threading.Lock()
        """Held by whichever thread is running a transaction on the connection."""
        self._synced_commits = True
        """The connection's ``synchronous`` is FULL (it opens so), else NORMAL."""

    def start(self) -> None:
        self._started.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()
        self._started.wait()
        error, self._start_error = self._start_error, None
        if error is not None:
            self._thread.join()
            self._thread = None
            if isinstance(error, LedgerError):
                raise error  # already says what is wrong with the ledger
            raise LedgerUnavailable(f"cannot open the ledger: {error}") from error

    def stop(self) -> None:
        """Commit everything already queued, then end the thread."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._jobs.put(None)
        thread.join()

    def check_running(self) -> None:
        """Raise ``LedgerUnavailable`` unless the writer thread is there to take operations."""
        if self._thread is None or not self._serving:
            raise LedgerUnavailable("the ledger writer is not running")

    async def run(
        self, operation: Operation[T], *, inline: bool = False, durable: bool = True
    ) -> T:
        """Run ``operation`` in the next transaction; it commits before this returns.

        ``inline``: no other write of this process is coming, so it may commit on
        the caller's thread (see the module's doc). ``durable``: its commit must
        be on disk before this returns (else only committed). A caller that is cancelled
        while waiting (client disconnect) does not take its write back: once
        queued, the operation commits regardless.
        """
        self.check_running()
        if inline and self._jobs.empty():
            outcome = self._commit_alone(operation, durable)
            if outcome is not None:
                # The commit never yielded to the loop: let the tasks that are ready run
                # before this caller goes on, so one that writes in a loop starves none.
                await asyncio.sleep(0)
                result, error = outcome
                if error is not None:
                    raise error
                return cast(T, result)
        if self._jobs.qsize() >= self._max_queue:
            raise LedgerUnavailable(f"the ledger write queue is full ({self._max_queue} waiting)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((operation, durable, future, loop))
        return await future

    def _run(self) -> None:
        try:
            connection = self._connect()
        except BaseException as error:  # reported to start(), which raises it
            self._start_error = error
            self._started.set()
            return
        self._connection = connection
        self._serving = True
        self._started.set()
        try:
            self._serve(connection)
        finally:
            self._serving = False
            with self._connection_lock:
                self._connection = None
                connection.close()
            self._fail_leftovers()

    def _serve(self, connection: sqlite3.Connection) -> None:
        while True:
            first = self._jobs.get()
            if first is None:
                return
            batch: list[_Job] = [first]
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
            try:
                with self._connection_lock:
                    outcomes = self._commit_batch(
                        connection,
                        [job[0] for job in batch],
                        durable=any(job[1] for job in batch),
                    )
            except BaseException as error:  # the connection itself broke: answer, then stop
                broken = LedgerUnavailable(f"the ledger writer failed: {error}")
                self._deliver(batch, [(None, broken)] * len(batch))
                raise
            self._deliver(batch, outcomes)
            if stopping:
                return

    def _fail_leftovers(self) -> None:
        """Jobs that raced with ``stop`` must not wait forever."""
        leftovers: list[_Job] = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                leftovers.append(job)
        closed = LedgerUnavailable("the ledger writer stopped")
        self._deliver(leftovers, [(None, closed)] * len(leftovers))

    def _commit_alone(
        self, operation: Operation[Any], durable: bool
    ) -> tuple[Any, BaseException | None] | None:
        """One operation committed on the calling thread, or None if that would mean waiting
        (the writer thread has the connection, or another process the write lock)."""
        connection = self._connection
        if connection is None or not self._connection_lock.acquire(blocking=False):
            return None
        try:
            (outcome,) = self._commit_batch(connection, [operation], durable=durable, wait=False)
        except _Busy:
            return None
        except Exception as error:
            if connection.in_transaction:
                connection.rollback()
            raise LedgerUnavailable(f"the ledger writer failed: {error}") from error
        finally:
            self._connection_lock.release()
        return outcome

    def _synchronous(self, connection: sqlite3.Connection, durable: bool) -> None:
        """FULL for a durable commit, NORMAL for holds alone; set only when it changes."""
        if durable != self._synced_commits:
            connection.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
            self._synced_commits = durable

    def _begin(self, connection: sqlite3.Connection, *, wait: bool) -> None:
        """``BEGIN IMMEDIATE``, retried at short intervals while another process writes.

        SQLite's own busy handler sleeps 1, 2, 5, 10, … ms between tries, while
        another process's batch holds the lock for well under a millisecond:
        those sleeps, not the other writer, would set every process's latency.
        Bounded by ``busy_timeout_s`` (the connection's own busy timeout is 0).
        Without ``wait``, a busy database raises ``_Busy`` at once.
        """
        deadline_s = time.monotonic() + self._busy_timeout_s
        pause_s = FIRST_BUSY_PAUSE_S
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                busy = error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
                if busy and not wait:
                    raise _Busy from error
                if not busy or time.monotonic() >= deadline_s:
                    raise
            time.sleep(pause_s)
            pause_s = min(2 * pause_s, MAX_BUSY_PAUSE_S)

    def _commit_batch(
        self,
        connection: sqlite3.Connection,
        operations: list[Operation[Any]],
        *,
        durable: bool,
        wait: bool = True,
    ) -> list[tuple[Any, BaseException | None]]:
        try:
            self._synchronous(connection, durable)
            self._begin(connection, wait=wait)
            try:
                outcomes = _run_unguarded(connection, operations)
            except _WroteThenFailed:
                connection.rollback()
                self._begin(connection, wait=wait)
                outcomes = _run_guarded(connection, operations)
        except (sqlite3.Error, _TransactionLost) as error:
            if connection.in_transaction:
                connection.rollback()
            failed = LedgerUnavailable(f"the ledger is busy or unreachable: {error}")
            return [(None, failed)] * len(operations)
        try:
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.rollback()
            lost = LedgerUnavailable(f"the ledger could not commit: {error}")
            return [(None, lost)] * len(operations)
        return outcomes

    @staticmethod
    def _deliver(batch: list[_Job], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for (_, _, future, loop), (result, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, result, error))
        for loop, loop_outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, loop_outcomes)
            except RuntimeError:
                continue  # that caller's event loop has closed; the writes stand


class _Busy(Exception):
    """Another process holds the write lock, and this caller must not wait for it."""


class _WroteThenFailed(Exception):
    """An operation raised after it had changed rows: only a rollback can undo that."""


class _TransactionLost(Exception):
    """SQLite rolled the whole transaction back itself (disk full, I/O error)."""


def _run_unguarded(
    connection: sqlite3.Connection, operations: list[Operation[Any]]
) -> list[tuple[Any, BaseException | None]]:
    """The common path: no savepoint per operation (each costs a sub-journal of every page
    it touches). An operation that fails before writing needs none; one that fails after
    writing raises ``_WroteThenFailed`` and the batch runs again, guarded."""
    outcomes: list[tuple[Any, BaseException | None]] = []
    for operation in operations:
        changes_before = connection.total_changes
        try:
            outcomes.append((operation(connection), None))
        except Exception as error:
            if connection.total_changes != changes_before or not connection.in_transaction:
                raise _WroteThenFailed from error
            outcomes.append((None, error))
    return outcomes


def _run_guarded(
    connection: sqlite3.Connection, operations: list[Operation[Any]]
) -> list[tuple[Any, BaseException | None]]:
    """Each operation in its own SAVEPOINT, so one that fails leaves no partial write."""
    outcomes: list[tuple[Any, BaseException | None]] = []
    for operation in operations:
        connection.execute("SAVEPOINT op")
        try:
            outcomes.append((operation(connection), None))
        except Exception as error:
            if not connection.in_transaction:
                raise _TransactionLost(error) from error
            connection.execute("ROLLBACK TO op")
            outcomes.append((None, error))
        connection.execute("RELEASE op")
    return outcomes
