"""The embedded SQLite ledger: WAL, durable commits, group commit, several processes.

Every commit that moves money or records usage is fsynced before it returns
(``synchronous=FULL``); the commits of holds and releases alone are not
(``NORMAL``; ``Write.durable`` says why that loses nothing a power loss would
not lose anyway, and ``ledger.sqlite.writer`` how a batch picks its level).

Writes go through one ``GroupCommitWriter`` per process; reads run on a small
thread pool of read-only connections (WAL lets them proceed while a write
commits), so the event loop never blocks on the database, except for the one
commit of a write made while this process has no other call underway (see
``SqliteEngine.alone``); a ``Checkpointer`` thread copies the WAL back into the
file so that no commit has to. The operations themselves are the shared SQL
routines (``ledger.sql``).
"""

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ledger.clock import Clock, system_clock
from ledger.errors import LedgerUnavailable
from ledger.sql.holds_here import HoldsHere
from ledger.sql.ledger import SqlLedger, Write
from ledger.sql.routine import Routine
from ledger.sqlite.checkpoint import WRITER_AUTOCHECKPOINT_PAGES, Checkpointer
from ledger.sqlite.runner import run
from ledger.sqlite.schema import migrate
from ledger.sqlite.writer import DEFAULT_MAX_BATCH, GroupCommitWriter

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
READER_THREADS = 4

MIN_SQLITE_VERSION = (3, 35, 0)
"""``UPDATE … RETURNING`` (3.35) ends a hold and tells whose it was in one statement."""


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise LedgerUnavailable(
            f"SQLite {sqlite3.sqlite_version} is too old for the ledger; it needs 3.35 or newer"
        )
    if read_only:
        connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not read_only:
        connection.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit fsyncs the WAL, so a power loss loses no committed operation
        # (the writer lowers it to NORMAL for batches of holds alone). Group commit
        # amortises that fsync over a whole batch.
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
    return connection


class SqliteEngine:
    """Transactions for the shared routines on one SQLite file (see the module's doc)."""

    def __init__(self, path: Path, holds_here: HoldsHere, *, max_batch: int) -> None:
        self.path = path
        self._holds_here = holds_here
        self._writer = GroupCommitWriter(
            self._open_writer, max_batch=max_batch, busy_timeout_s=BUSY_TIMEOUT_MS / 1000
        )
        self._checkpointer = Checkpointer(partial(_connect, self.path, read_only=False))
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()

    def _open_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = _connect(self.path, read_only=False)
        connection.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
        migrate(connection)
        # From here the writer waits for other processes itself (GroupCommitWriter._begin).
        connection.execute("PRAGMA busy_timeout = 0")
        return connection

    async def open(self) -> None:
        if self._readers is not None:
            return
        await asyncio.to_thread(self._writer.start)
        self._checkpointer.start()
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="ledger-reader")

    async def close(self) -> None:
        if self._readers is None:
            return
        await asyncio.to_thread(self._writer.stop)
        await asyncio.to_thread(self._checkpointer.stop)
        self._readers.shutdown(wait=True)
        self._readers = None

    async def ping(self) -> None:
        self._writer.check_running()
        await self._in_snapshot(lambda connection: connection.execute("SELECT 1").fetchone())

    def alone(self, write: Write[Any]) -> bool:
        """No call is underway in this process (``HoldsHere``) but the one this write belongs
        to: nothing could share its commit, so it may commit on the caller's thread (if the
        writer has nothing queued or running either, ``GroupCommitWriter.run``)."""
        underway = len(self._holds_here)
        return underway == 0 or (underway == 1 and write.call in self._holds_here)

    def write(self, write: Write[T]) -> Awaitable[T]:
        return self._writer.run(_operation(write), inline=self.alone(write), durable=write.durable)

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = _connect(self.path, read_only=True)
            self._local.connection = connection
        return connection

    async def read(self, routine: Callable[[], Routine[T]]) -> T:
        return await self._in_snapshot(lambda connection: run(connection, routine()))

    async def _in_snapshot(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise LedgerUnavailable("the ledger is not open")

        def run_query() -> T:
            connection = self._reader()
            connection.execute("BEGIN")
            try:
                return query(connection)
            finally:
                connection.execute("COMMIT")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, run_query)
        except sqlite3.Error as error:
            raise LedgerUnavailable(f"the ledger cannot be read: {error}") from error


def _operation(write: Write[T]) -> "partial[T]":
    """A write as the group-commit writer runs it: a fresh routine on every run, since the
    writer runs a batch again after a failure."""
    return partial(_run_write, write.routine)


def _run_write(routine: Callable[[], Routine[T]], connection: sqlite3.Connection) -> T:
    return run(connection, routine())


class SqliteLedger(SqlLedger):
    """``LedgerStore`` on one SQLite file, safe for several worker processes."""

    def __init__(
        self, path: str | Path, *, clock: Clock = system_clock, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self.path = Path(path)
        holds_here = HoldsHere()
        super().__init__(
            SqliteEngine(self.path, holds_here, max_batch=max_batch), clock, holds_here
        )
