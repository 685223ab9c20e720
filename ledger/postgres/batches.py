"""Batched writes: every write one process queues while a transaction is under way rides in
the next one, so one commit (and one lock of a hot account) serves them all.

One transaction runs at a time per process. It opens READ COMMITTED, locks every
account its writes may change with one ``SELECT … ORDER BY org_id FOR UPDATE``
(the accounts of ended holds found by request id in the same statement), then
runs the writes' routines one after another, pipelined: a routine's writes are
sent with its next query, and the last ones with ``COMMIT``. Locking all of a
batch's accounts first, in org-id order, is what keeps batches of many
processes from deadlocking; READ COMMITTED then makes each statement after the
lock see everything committed before it, so a routine's reads are current and
nothing can change them before its writes.

Failures are confined as SQLite's writer confines them (``ledger.sqlite.writer``):
a routine that refuses before writing answers its caller and spares the batch;
any database error, or a routine that raises after writing, rolls the batch
back, and it runs again unpipelined with a SAVEPOINT around each routine. A
unique violation there means another process committed the same id first: the
routine runs again and now sees it (and replays, or reports the conflict).
Deadlocks, lock timeouts, serialization failures and lost connections retry
the whole batch a bounded number of times, then fail closed with
``LedgerUnavailable``; a commit whose outcome is unknown also answers
``LedgerUnavailable``, which is safe because every write is idempotent by id.

Every batch commits synchronously, holds included (``Write.durable`` is not
lowered to ``synchronous_commit = off`` here as SQLite lowers it): the server
is not the gateway's machine, so a server crash does not end the calls in
flight, and a hold it forgot would leave a call that ran with nothing to settle.
"""

import asyncio
import collections
import logging
import random
from typing import Any

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from ledger.errors import LedgerUnavailable
from ledger.postgres.runner import Cursor, Step, run
from ledger.sql.ledger import Write

logger = logging.getLogger("spu.ledger.postgres")

DEFAULT_MAX_BATCH = 512
DEFAULT_MAX_QUEUE = 10_000
BATCH_ATTEMPTS = 5
ROUTINE_ATTEMPTS = 3
BACKOFF_FIRST_S = 0.002

_LOCK_ACCOUNTS_SQL = (
    "SELECT 1 FROM accounts WHERE org_id = ANY($1)"
    " OR org_id IN (SELECT org_id FROM holds WHERE request_id = ANY($2))"
    " ORDER BY org_id FOR UPDATE"
)

_Job = tuple[Write[Any], "asyncio.Future[Any]"]
_Outcome = tuple[Any, BaseException | None]
Connection = psycopg.AsyncConnection[Any]

_RETRYABLE = (
    errors.DeadlockDetected,
    errors.SerializationFailure,
    errors.LockNotAvailable,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
"""Failures of the batch as a whole, not of one routine: the batch runs again."""


class _RerunGuarded(Exception):
    """The pipelined run cannot say which routine failed, or one must be undone."""


class BatchWriter:
    """Takes writes from this process's event loop and commits them in batches."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: collections.deque[_Job] = collections.deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="ledger-batches")

    async def stop(self) -> None:
        """Commit everything already queued, then end."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        await task

    def check_running(self) -> None:
        if self._task is None or self._task.done():
            raise LedgerUnavailable("the ledger's batch writer is not running")

    async def run(self, write: Write[Any]) -> Any:
        """Run ``write`` in the next batch; it has committed when this returns.

        A caller cancelled while waiting does not take its write back.
        """
        self.check_running()
        if len(self._queue) >= self._max_queue:
            raise LedgerUnavailable(f"the ledger write queue is full ({self._max_queue} waiting)")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        self._wakeup.set()
        return await future

    async def _serve(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch = [
                    self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))
                ]
                outcomes = await self._commit([write for write, _ in batch])
                for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue  # its caller went away; the write stands
                    if error is None:
                        future.set_result(result)
                    else:
                        future.set_exception(error)
            if self._stopping:
                return

    async def _commit(self, writes: list[Write[Any]]) -> list[_Outcome]:
        guarded = False
        last_error: BaseException | None = None
        for attempt in range(BATCH_ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, BACKOFF_FIRST_S * 2**attempt))
            try:
                async with self._pool.connection() as connection:
                    try:
                        if guarded:
                            return await _guarded(connection, writes)
                        return await _pipelined(connection, writes)
                    finally:
                        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                            await connection.rollback()
            except _RerunGuarded as error:
                guarded, last_error = True, error.__cause__ or error
            except _RETRYABLE as error:
                guarded, last_error = True, error
            except psycopg.Error as error:
                guarded, last_error = True, error
        logger.warning("ledger batch of %d writes failed: %s", len(writes), last_error)
        failed = LedgerUnavailable(f"the ledger cannot commit right now: {last_error}")
        return [(None, failed)] * len(writes)


async def _begin(cursor: Cursor, writes: list[Write[Any]]) -> None:
    org_ids = sorted({org_id for write in writes for org_id in write.org_ids})
    ended = [write.call for write in writes if write.call is not None and not write.org_ids]
    await cursor.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
    await cursor.execute(_LOCK_ACCOUNTS_SQL, (org_ids, ended))


async def _pipelined(connection: Connection, writes: list[Write[Any]]) -> list[_Outcome]:
    """The batch in one pipeline: the writes of each org in order, different orgs side by side
    (their queries go out together), then the writes of several or unknown orgs."""
    outcomes: list[_Outcome] = [(None, None)] * len(writes)
    by_org: dict[str, collections.deque[int]] = {}
    others: list[int] = []
    for index, write in enumerate(writes):
        if len(write.org_ids) == 1:
            by_org.setdefault(write.org_ids[0], collections.deque()).append(index)
        else:
            others.append(index)
    try:
        async with connection.pipeline():
            cursor = Cursor(connection)
            await _begin(cursor, writes)
            lanes = [_Lane(Cursor(connection), indices) for indices in by_org.values()]
            await _run_lanes(lanes, writes, outcomes)
            await _run_lanes([_Lane(cursor, collections.deque(others))], writes, outcomes)
            await cursor.execute("COMMIT")
    except psycopg.Error as error:
        if isinstance(error, _RETRYABLE):
            raise
        raise _RerunGuarded from error
    return outcomes


class _Lane:
    """The writes of one org, run one after another on a cursor of their own."""

    __slots__ = ("cursor", "index", "pending", "step")

    def __init__(self, cursor: Cursor, pending: collections.deque[int]) -> None:
        self.cursor = cursor
        self.pending = pending
        self.index = -1
        self.step: Step[Any] | None = None


async def _run_lanes(
    lanes: list[_Lane], writes: list[Write[Any]], outcomes: list[_Outcome]
) -> None:
    """Advance every lane to its next query, then collect all their rows: one round trip
    per step for all the lanes together."""
    waiting = lanes
    while waiting:
        asked = []
        for lane in waiting:
            if await _advance(lane, writes, outcomes):
                asked.append(lane)
        for lane in asked:
            assert lane.step is not None
            await lane.step.receive()
        waiting = asked


async def _advance(lane: _Lane, writes: list[Write[Any]], outcomes: list[_Outcome]) -> bool:
    """Run the lane to its current routine's next query (True), or to its end (False)."""
    while True:
        if lane.step is None:
            if not lane.pending:
                return False
            lane.index = lane.pending.popleft()
            lane.step = Step(lane.cursor, writes[lane.index].routine())
        step = lane.step
        try:
            if await step.advance():
                return True
        except psycopg.Error:
            raise
        except Exception as error:
            if step.wrote:
                raise _RerunGuarded from error
            outcomes[lane.index] = (None, error)
        else:
            outcomes[lane.index] = (step.result, None)
        lane.step = None


async def _guarded(
    connection: psycopg.AsyncConnection[Any], writes: list[Write[Any]]
) -> list[_Outcome]:
    cursor = Cursor(connection)
    await _begin(cursor, writes)
    outcomes = [await _one_guarded(cursor, write) for write in writes]
    await cursor.execute("COMMIT")
    return outcomes


async def _one_guarded(cursor: Cursor, write: Write[Any]) -> _Outcome:
    """One routine in its own savepoint; rerun when another process won a unique id."""
    for _ in range(ROUTINE_ATTEMPTS):
        await cursor.execute("SAVEPOINT routine")
        try:
            result = await run(cursor, write.routine())
        except errors.UniqueViolation:
            await cursor.execute("ROLLBACK TO SAVEPOINT routine")
            continue
        except _RETRYABLE:
            raise
        except Exception as error:
            await cursor.execute("ROLLBACK TO SAVEPOINT routine")
            return None, error
        await cursor.execute("RELEASE SAVEPOINT routine")
        return result, None
    return None, LedgerUnavailable("a write kept colliding with concurrent writes of the same id")
