"""Copies the write-ahead log back into the database file, off the write path.

SQLite's automatic checkpoint runs inside whichever commit pushes the WAL past
its threshold, and that commit (with every operation batched into it) then
waits for the pages to be copied and the database file to be fsynced. Here a
thread runs a PASSIVE checkpoint on its own connection every ``interval_s``,
which blocks neither the writer nor the readers, so the writer's automatic
checkpoint (kept at SQLite's usual threshold, which bounds the WAL) finds
almost nothing left to copy. The WAL then stays small and is rewritten in
place rather than grown, and an fsync of rewritten blocks is cheaper than one
of appended blocks.
"""

import sqlite3
import threading
from collections.abc import Callable

DEFAULT_INTERVAL_S = 0.05
WRITER_AUTOCHECKPOINT_PAGES = 1_000
"""The writer checkpoints by itself past ~4 MiB of WAL (4 KiB pages): a PASSIVE
checkpoint cannot rewind a WAL that keeps being appended to; the writer's, run
between two of its transactions, can."""


class Checkpointer:
    def __init__(
        self, connect: Callable[[], sqlite3.Connection], *, interval_s: float = DEFAULT_INTERVAL_S
    ) -> None:
        self._connect = connect
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="ledger-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        thread.join()

    def _run(self) -> None:
        try:
            connection = self._connect()
        except sqlite3.Error:
            return  # the writer's own automatic checkpoints still bound the WAL
        try:
            while not self._stopping.wait(self._interval_s):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy or briefly unreachable: the next round tries again
        finally:
            connection.close()
