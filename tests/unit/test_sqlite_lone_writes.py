"""The group-commit writer's shortcut for a lone caller: commit on the caller's own thread."""

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.sqlite.writer import GroupCommitWriter


def _writer(tmp_path: Path, *, alone: bool) -> GroupCommitWriter:
    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            tmp_path / "w.db", isolation_level=None, check_same_thread=False, timeout=0
        )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL CHECK (v > 0))")
        return connection

    writer = GroupCommitWriter(connect, max_batch=8, busy_timeout_s=5)
    writer.commit_inline_while(lambda: alone)
    return writer


def _committed(tmp_path: Path) -> list[int]:
    """What another connection sees: only committed rows."""
    connection = sqlite3.connect(tmp_path / "w.db")
    try:
        return [row[0] for row in connection.execute("SELECT v FROM t ORDER BY rowid")]
    finally:
        connection.close()


def _insert_on(threads: list[int], value: int = 1) -> Callable[[sqlite3.Connection], int]:
    def insert(connection: sqlite3.Connection) -> int:
        threads.append(threading.get_ident())
        connection.execute("INSERT INTO t VALUES (?)", (value,))
        return value

    return insert


async def test_a_lone_write_commits_on_the_callers_thread(tmp_path: Path) -> None:
    writer = _writer(tmp_path, alone=True)
    writer.start()
    threads: list[int] = []
    try:
        assert await writer.run(_insert_on(threads, 7)) == 7
        assert _committed(tmp_path) == [7]
    finally:
        writer.stop()
    assert threads == [threading.get_ident()]


async def test_writes_that_are_not_alone_go_through_the_writer_thread(tmp_path: Path) -> None:
    writer = _writer(tmp_path, alone=False)
    writer.start()
    threads: list[int] = []
    try:
        await writer.run(_insert_on(threads))
    finally:
        writer.stop()
    assert threads != [threading.get_ident()]
    assert _committed(tmp_path) == [1]


async def test_a_lone_write_that_fails_after_writing_leaves_no_trace(tmp_path: Path) -> None:
    writer = _writer(tmp_path, alone=True)
    writer.start()

    def insert_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO t VALUES (5)")
        connection.execute("INSERT INTO t VALUES (-1)")

    try:
        with pytest.raises(sqlite3.IntegrityError):
            await writer.run(insert_then_fail)
        await writer.run(_insert_on([], 6))
    finally:
        writer.stop()
    assert _committed(tmp_path) == [6]


async def test_a_lone_write_never_waits_on_the_loop_for_another_process(tmp_path: Path) -> None:
    """Another writer holds the lock: the write queues for the thread, the loop stays free."""
    writer = _writer(tmp_path, alone=True)
    writer.start()
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threads: list[int] = []
    try:
        call = asyncio.ensure_future(writer.run(_insert_on(threads)))
        await asyncio.sleep(0.05)
        assert not call.done()
        other.execute("COMMIT")
        await asyncio.wait_for(call, timeout=5)
    finally:
        other.close()
        writer.stop()
    assert threads != [threading.get_ident()]
    assert _committed(tmp_path) == [1]


async def test_a_lone_write_queues_while_the_writer_thread_has_a_batch(tmp_path: Path) -> None:
    writer = _writer(tmp_path, alone=False)
    writer.start()
    started, release = threading.Event(), threading.Event()

    def gate(connection: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)

    threads: list[int] = []
    try:
        gated = asyncio.ensure_future(writer.run(gate))
        await asyncio.to_thread(started.wait, 5)
        writer.commit_inline_while(lambda: True)
        call = asyncio.ensure_future(writer.run(_insert_on(threads)))
        await asyncio.sleep(0.05)
        assert not call.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(gated, call), timeout=5)
    finally:
        writer.stop()
    assert threads != [threading.get_ident()]
    assert _committed(tmp_path) == [1]
