"""SQLite internals the contract suite cannot see: migrations and the group-commit writer."""

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.errors import LedgerUnavailable
from ledger.sqlite import SqliteLedger
from ledger.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from ledger.sqlite.writer import GroupCommitWriter
from ledger.verify import verify

NOW_S = 1_800_000_000.0


def _version_one_file(path: Path) -> None:
    """A ledger file as the first release wrote it, with holds in every state."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.executescript(MIGRATIONS[0])
    connection.execute("PRAGMA user_version = 1")
    now_ms = int(NOW_S * 1000)
    connection.execute(
        "INSERT INTO accounts (org_id, granted_credits_units, created_at_ms, updated_at_ms)"
        " VALUES ('org-1', 1000, ?, ?)",
        (now_ms, now_ms),
    )
    connection.execute(
        "INSERT INTO credit_transactions VALUES ('free_tier:org-1', 'org-1', 'free_tier',"
        " 1000, 0, 'free tier', ?)",
        (now_ms,),
    )
    holds = [("open", 100, 60_000), ("open", 40, -1), ("released", 7, 60_000)]
    for n, (state, amount, ttl_ms) in enumerate(holds):
        connection.execute(
            "INSERT INTO holds (request_id, org_id, amount_units, state, created_at_ms,"
            " expires_at_ms) VALUES (?, 'org-1', ?, ?, ?, ?)",
            (f"req-{n}", amount, state, now_ms, now_ms + ttl_ms),
        )
    connection.close()


async def test_an_old_file_comes_up_at_the_current_version_with_its_holds_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    _version_one_file(path)

    store = SqliteLedger(path, clock=lambda: NOW_S)
    await store.open()
    try:
        balance = await store.balance("org-1")
        # req-1 is open but past its expiry: counted in the total, not against the balance.
        assert (balance.held_units, balance.available_units) == (100, 900)
        assert await verify(store) == (1, [])
        assert await store.expire_holds() == 1
        assert await store.release("req-0") is True
        assert (await store.balance("org-1")).held_units == 0
        assert await verify(store) == (1, [])
    finally:
        await store.close()
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    connection.close()


async def test_a_file_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()

    with pytest.raises(LedgerUnavailable, match="newer than this gateway"):
        await SqliteLedger(path).open()


def _writer(tmp_path: Path, busy_timeout_s: float = 5.0) -> GroupCommitWriter:
    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(
            tmp_path / "w.db", isolation_level=None, check_same_thread=False, timeout=0
        )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL CHECK (v > 0))")
        return connection

    return GroupCommitWriter(connect, max_batch=8, busy_timeout_s=busy_timeout_s)


def _insert(connection: sqlite3.Connection) -> None:
    connection.execute("INSERT INTO t VALUES (1)")


async def _in_one_batch(
    writer: GroupCommitWriter, operations: list[Callable[[sqlite3.Connection], object]]
) -> list[object]:
    """Hold the writer busy until every operation is queued, so they share one transaction."""
    started, release = threading.Event(), threading.Event()

    def gate(connection: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)

    gated = asyncio.ensure_future(writer.run(gate))
    await asyncio.to_thread(started.wait, 5)
    calls = asyncio.gather(*(writer.run(op) for op in operations), return_exceptions=True)
    await asyncio.sleep(0)
    release.set()
    await gated
    return list(await calls)


def _count(tmp_path: Path) -> int:
    connection = sqlite3.connect(tmp_path / "w.db")
    try:
        return int(connection.execute("SELECT COUNT(*) FROM t").fetchone()[0])
    finally:
        connection.close()


async def test_an_operation_failing_after_a_write_leaves_no_trace_and_spares_its_batch(
    tmp_path: Path,
) -> None:
    writer = _writer(tmp_path)
    writer.start()
    runs: list[int] = []

    def insert_one_then(value: int) -> Callable[[sqlite3.Connection], int]:
        def operation(connection: sqlite3.Connection) -> int:
            runs.append(value)
            connection.execute("INSERT INTO t VALUES (1)")
            connection.execute("INSERT INTO t VALUES (?)", (value,))
            return value

        return operation

    try:
        outcomes = await _in_one_batch(writer, [insert_one_then(v) for v in (5, -1, 6)])
    finally:
        writer.stop()

    assert outcomes[0] == 5 and outcomes[2] == 6
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    assert _count(tmp_path) == 4
    assert runs == [5, -1, 5, -1, 6], "the batch ran again, each operation guarded"


async def test_an_operation_failing_before_any_write_spares_its_batch(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.start()
    runs: list[str] = []

    def insert(connection: sqlite3.Connection) -> None:
        runs.append("insert")
        _insert(connection)

    def refuse(connection: sqlite3.Connection) -> None:
        runs.append("refuse")
        raise ValueError("refused before writing")

    try:
        outcomes = await _in_one_batch(writer, [insert, refuse, insert])
    finally:
        writer.stop()

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ValueError)
    assert _count(tmp_path) == 2
    assert runs == ["insert", "refuse", "insert"]


async def test_a_cancelled_caller_does_not_take_its_write_back(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.start()
    release = threading.Event()

    def slow_insert(connection: sqlite3.Connection) -> None:
        release.wait(5)
        _insert(connection)

    try:
        call = asyncio.ensure_future(writer.run(slow_insert))
        await asyncio.sleep(0.01)
        call.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await call
    finally:
        writer.stop()

    assert _count(tmp_path) == 1


async def test_a_stopped_writer_refuses_new_work(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.start()
    writer.stop()

    with pytest.raises(LedgerUnavailable):
        await writer.run(lambda connection: None)


def _other_process_writing(tmp_path: Path) -> sqlite3.Connection:
    """Another writer of the same file, in the middle of its transaction."""
    other = sqlite3.connect(tmp_path / "w.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_the_writer_waits_for_another_writer_then_commits(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.start()
    other = _other_process_writing(tmp_path)
    try:
        call = asyncio.ensure_future(writer.run(_insert))
        await asyncio.sleep(0.05)
        assert not call.done()
        other.execute("COMMIT")
        await asyncio.wait_for(call, timeout=5)
    finally:
        other.close()
        writer.stop()

    assert _count(tmp_path) == 1


async def test_the_writer_gives_up_after_its_busy_timeout(tmp_path: Path) -> None:
    writer = _writer(tmp_path, busy_timeout_s=0.05)
    writer.start()
    other = _other_process_writing(tmp_path)
    try:
        with pytest.raises(LedgerUnavailable, match="busy"):
            await asyncio.wait_for(writer.run(_insert), timeout=5)
    finally:
        other.close()
        writer.stop()

    assert _count(tmp_path) == 0
