"""The PostgreSQL ledger: the shared SQL routines on psycopg 3's async API and a pool.

Why psycopg 3 and not asyncpg: its pipeline mode lets a batch send a routine's
writes together with its next read, so a hold or a settle costs one round trip
inside a batch, and its raw cursor takes PostgreSQL's own ``$1`` placeholders,
the ones the shared SQL's ``?1`` renders to. Measured on this project's
two-core machine, a batch of holds costs less client CPU per hold with psycopg
pipelined than with asyncpg (one round trip per statement), and far less wall
time.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg_pool import AsyncConnectionPool

from ledger.clock import Clock, system_clock
from ledger.errors import LedgerUnavailable
from ledger.postgres.batches import DEFAULT_MAX_BATCH, BatchWriter
from ledger.postgres.runner import Cursor, run
from ledger.postgres.schema import migrate
from ledger.sql.holds_here import HoldsHere
from ledger.sql.ledger import SqlLedger, Write
from ledger.sql.routine import Query, Routine, Row

T = TypeVar("T")

DEFAULT_POOL_MAX_SIZE = 10
POOL_MIN_SIZE = 2
CONNECT_TIMEOUT_S = 10.0
READ_ATTEMPTS = 2
LOCK_TIMEOUT_MS = 10_000

POOL_SIZE_PARAMETER = "pool_max_size"
"""A query parameter of the ledger URL that sizes the pool; the driver never sees it."""


def split_pool_size(url: str) -> tuple[str, int]:
    """The connection URL without ``pool_max_size``, and the pool size it asked for."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    sizes = [value for name, value in query if name == POOL_SIZE_PARAMETER]
    size = int(sizes[-1]) if sizes else DEFAULT_POOL_MAX_SIZE
    if size < 1:
        raise ValueError(f"{POOL_SIZE_PARAMETER} must be at least 1, not {size}")
    kept = urlencode([(name, value) for name, value in query if name != POOL_SIZE_PARAMETER])
    return urlunsplit(parts._replace(query=kept)), size


class PostgresEngine:
    """Batched write transactions and snapshot reads on one connection pool."""

    def __init__(self, url: str, *, max_batch: int) -> None:
        self._conninfo, pool_max_size = split_pool_size(url)
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._conninfo,
            min_size=min(POOL_MIN_SIZE, pool_max_size),
            max_size=pool_max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            timeout=CONNECT_TIMEOUT_S,
            name="spu-ledger",
        )
        self._writer = BatchWriter(self._pool, max_batch=max_batch)
        self._opened = False

    async def open(self) -> None:
        """Migrate on a connection of its own (an unreachable server fails at once, with the
        driver's reason), then fill the pool and start the batch writer."""
        if self._opened:
            return
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                connection = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            async with connection:
                await migrate(connection)
            await self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except LedgerUnavailable:
            await self._pool.close()
            raise
        except (psycopg.Error, OSError, TimeoutError) as error:
            await self._pool.close()
            raise LedgerUnavailable(
                f"cannot open the PostgreSQL ledger: {error or 'no answer in time'}"
            ) from error
        self._writer.start()
        self._opened = True

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        await self._writer.stop()
        await self._pool.close()

    async def ping(self) -> None:
        self._writer.check_running()
        await self.read(_ping)

    def write(self, write: Write[T]) -> Awaitable[T]:
        return self._writer.run(write)

    async def read(self, routine: Callable[[], Routine[T]]) -> T:
        """In one REPEATABLE READ, READ ONLY transaction: one snapshot for every query.

        A read that fails on a dead connection runs once more (on another one);
        it changes nothing, so running it again is always safe.
        """
        if not self._opened:
            raise LedgerUnavailable("the ledger is not open")
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                async with self._pool.connection() as connection:
                    try:
                        async with connection.pipeline():
                            cursor = Cursor(connection)
                            await cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                            result = await run(cursor, routine())
                            await cursor.execute("COMMIT")
                        return result
                    finally:
                        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                            await connection.rollback()
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                if attempt == READ_ATTEMPTS:
                    raise LedgerUnavailable(f"the ledger cannot be read: {error}") from error
        raise AssertionError("unreachable")


async def _configure(connection: psycopg.AsyncConnection[Any]) -> None:
    """Each pooled connection waits at most ``LOCK_TIMEOUT_MS`` for a row lock (then the
    batch fails closed, like SQLite's busy timeout)."""
    await connection.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")


def _ping() -> Routine[Sequence[Row]]:
    return (yield Query("SELECT 1"), ())


class PostgresLedger(SqlLedger):
    """``LedgerStore`` on PostgreSQL: many processes, many machines, one database."""

    def __init__(
        self, url: str, *, clock: Clock = system_clock, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self.url = url
        super().__init__(PostgresEngine(url, max_batch=max_batch), clock, HoldsHere())
