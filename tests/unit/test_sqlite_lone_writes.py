"""The group-commit writer's shortcut for a lone caller: commit on the caller's own thread.

The SQLite ledger asks for it (``inline=True``) when its process has no call
underway but the one a write ends, which it counts itself: the tests at the
end check that trigger through the ledger's own methods.
"""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from ledger import UNITS_PER_SPU, HoldPlaced, HoldRefused, UsageDetails
from ledger.sql.routine import Routine
from ledger.sqlite import SqliteLedger, runner
from ledger.sqlite import store as store_module
from ledger.sqlite.writer import GroupCommitWriter

T = TypeVar("T")
DETAILS = UsageDetails(model="gpt-4o-mini", provider="openai", total_tokens=1)


def _writer(tmp_path: Path) -> GroupCommitWriter:
    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            tmp_path / "w.db", isolation_level=None, check_same_thread=False, timeout=0
        )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL CHECK (v > 0))")
        return connection

    return GroupCommitWriter(connect, max_batch=8, busy_timeout_s=5)


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
    writer = _writer(tmp_path)
    writer.start()
    threads: list[int] = []
    try:
        assert await writer.run(_insert_on(threads, 7), inline=True) == 7
        assert _committed(tmp_path) == [7]
    finally:
        writer.stop()
    assert threads == [threading.get_ident()]


async def test_writes_that_are_not_alone_go_through_the_writer_thread(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.start()
    threads: list[int] = []
    try:
        await writer.run(_insert_on(threads), inline=False)
    finally:
        writer.stop()
    assert threads != [threading.get_ident()]
    assert _committed(tmp_path) == [1]


async def test_a_lone_write_that_fails_after_writing_leaves_no_trace(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.start()

    def insert_then_fail(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO t VALUES (5)")
        connection.execute("INSERT INTO t VALUES (-1)")

    try:
        with pytest.raises(sqlite3.IntegrityError):
            await writer.run(insert_then_fail, inline=True)
        await writer.run(_insert_on([], 6), inline=True)
    finally:
        writer.stop()
    assert _committed(tmp_path) == [6]


async def test_a_lone_write_never_waits_on_the_loop_for_another_process(tmp_path: Path) -> None:
    """Another writer holds the lock: the write queues for the thread, the loop stays free."""
    writer = _writer(tmp_path)
    writer.start()
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threads: list[int] = []
    try:
        call = asyncio.ensure_future(writer.run(_insert_on(threads), inline=True))
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
    writer = _writer(tmp_path)
    writer.start()
    started, release = threading.Event(), threading.Event()

    def gate(connection: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)

    threads: list[int] = []
    try:
        gated = asyncio.ensure_future(writer.run(gate))
        await asyncio.to_thread(started.wait, 5)
        call = asyncio.ensure_future(writer.run(_insert_on(threads), inline=True))
        await asyncio.sleep(0.05)
        assert not call.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(gated, call), timeout=5)
    finally:
        writer.stop()
    assert threads != [threading.get_ident()]
    assert _committed(tmp_path) == [1]


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqliteLedger]:
    store = SqliteLedger(tmp_path / "ledger.db")
    await store.open()
    await store.create_account("org-1", free_grant_units=100 * UNITS_PER_SPU)
    yield store
    await store.close()


def _threads_of_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The thread each write routine runs on, in order (its body runs where it is run)."""
    threads: list[str] = []
    original = runner.run

    def noting(connection: sqlite3.Connection, routine: Routine[T]) -> T:
        threads.append(threading.current_thread().name)
        return original(connection, routine)

    monkeypatch.setattr(store_module, "run", noting)
    return threads


async def _between_calls() -> None:
    """What happens between two calls in the gateway: the event loop turns."""
    await asyncio.sleep(0)


async def test_a_lone_calls_hold_and_settlement_commit_on_the_callers_thread(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _threads_of_writes(monkeypatch)
    for request_id in ("req-1", "req-2"):
        assert isinstance(await ledger.hold("org-1", 10, request_id, 60), HoldPlaced)
        await ledger.settle(request_id, 5, DETAILS)
        await _between_calls()
    await ledger.hold("org-1", 10, "req-3", 60)
    await ledger.release("req-3")
    assert threads == [threading.current_thread().name] * 6


async def test_writes_while_another_call_is_underway_go_through_the_writer_thread(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _threads_of_writes(monkeypatch)
    here = threading.current_thread().name
    for write in (
        ledger.hold("org-1", 10, "first", 60),
        ledger.hold("org-1", 10, "second", 60),
        ledger.settle("first", 5, DETAILS),
        ledger.release("second"),
        ledger.hold("org-1", 10, "third", 60),
    ):
        await write
        await _between_calls()
    assert threads[0] == here, "nothing else was underway"
    assert threads[1] != here and threads[2] != here, "two calls were underway"
    assert threads[3] == here, "only the call it ends was underway"
    assert threads[4] == here, "both earlier calls had ended"


async def test_a_refused_hold_leaves_nothing_underway(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _threads_of_writes(monkeypatch)
    refused = await ledger.hold("org-1", 10**4 * UNITS_PER_SPU, "too-big", 60)
    assert isinstance(refused, HoldRefused)
    await _between_calls()
    await ledger.hold("org-1", 10, "next", 60)
    await ledger.settle("next", 5, DETAILS)
    assert threads == [threading.current_thread().name] * 3


async def test_a_commit_on_the_callers_thread_lets_ready_tasks_run_before_it_returns(
    ledger: SqliteLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller that writes in a loop cannot keep other tasks waiting: each commit on its
    thread is followed by a turn of the event loop."""
    threads = _threads_of_writes(monkeypatch)
    other_ran = asyncio.Event()
    asyncio.get_running_loop().call_soon(other_ran.set)
    await ledger.hold("org-1", 10, "a", 60)
    assert threads == [threading.current_thread().name]
    assert other_ran.is_set()
