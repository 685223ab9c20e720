"""Multi-document transactions with a bounded retry, and driver failures as ledger errors.

Why not ``AsyncClientSession.with_transaction``: it retries for a fixed 120 s,
far longer than a metered call may wait, and bounding it otherwise needs the
provisional ``pymongo.timeout``. This loop follows the same rules from the
transactions specification (rerun the body on ``TransientTransactionError``,
re-commit on ``UnknownTransactionCommitResult``) with a fixed number of tries.
"""

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)
from pymongo.read_concern import ReadConcern

from ledger.errors import LedgerUnavailable
from ledger.mongo.collections import MAJORITY, PRIMARY

T = TypeVar("T")
P = ParamSpec("P")

MAX_TRANSACTION_ATTEMPTS = 25
"""Runs of the body. Write conflicts on one busy customer document are the usual cause:
transactions that write the same org serialise through them (worst case ~1 s of backoff)."""
MAX_COMMIT_ATTEMPTS = 3
BACKOFF_FIRST_S = 0.002
BACKOFF_MAX_S = 0.05

TRANSIENT = "TransientTransactionError"
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"
MAX_TIME_EXPIRED = 50

Work = Callable[[AsyncClientSession], Awaitable[T]]


def backoff_s(attempt: int) -> float:
    """Full-jitter exponential backoff, so conflicting writers spread out instead of colliding."""
    return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**attempt))


def is_transient(error: BaseException) -> bool:
    return isinstance(error, PyMongoError) and error.has_error_label(TRANSIENT)


async def _commit(session: AsyncClientSession) -> None:
    for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
        try:
            await session.commit_transaction()
            return
        except PyMongoError as error:
            unknown = error.has_error_label(UNKNOWN_COMMIT) and not (
                isinstance(error, OperationFailure) and error.code == MAX_TIME_EXPIRED
            )
            if not unknown:
                raise
            if attempt == MAX_COMMIT_ATTEMPTS:
                raise LedgerUnavailable(
                    f"MongoDB did not confirm a commit after {attempt} tries; retrying the"
                    f" same idempotent call is safe: {error}"
                ) from error


async def run_transaction(client: AsyncMongoClient[dict[str, Any]], work: Work[T]) -> T:
    """Run ``work`` in one snapshot transaction, committed with majority write concern.

    ``work`` may run several times, so it must only read and write through the
    session and build its result from what it read.
    """
    last_error: BaseException | None = None
    async with client.start_session() as session:
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            if attempt:
                await asyncio.sleep(backoff_s(attempt))
            await session.start_transaction(
                read_concern=ReadConcern("snapshot"),
                write_concern=MAJORITY,
                read_preference=PRIMARY,
            )
            try:
                result = await work(session)
            except BaseException as error:
                if session.in_transaction:
                    await session.abort_transaction()
                if not is_transient(error):
                    raise
                last_error = error
                continue
            try:
                await _commit(session)
            except PyMongoError as error:
                if not is_transient(error):
                    raise
                last_error = error
                continue
            return result
    raise LedgerUnavailable(
        f"a MongoDB transaction still conflicted after {MAX_TRANSACTION_ATTEMPTS} tries:"
        f" {last_error}"
    ) from last_error


async def run_once_per_id(client: AsyncMongoClient[dict[str, Any]], work: Work[T]) -> T:
    """``run_transaction`` for a body that inserts under an id it checked was free.

    A concurrent write of the same id that commits after this transaction's
    snapshot was taken surfaces as a ``DuplicateKeyError`` (not a transient
    conflict): the body runs once more, on a snapshot that now holds the other
    write, and gives the idempotent answer (a replay, or the id's conflict).
    """
    try:
        return await run_transaction(client, work)
    except DuplicateKeyError:
        return await run_transaction(client, work)


def translate_failures(
    method: Callable[P, Awaitable[T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Unreachable or timed-out MongoDB becomes ``LedgerUnavailable``: callers fail closed."""

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except ConnectionFailure as error:
            raise LedgerUnavailable(f"MongoDB cannot be reached: {error}") from error
        except WriteConcernError as error:
            # No majority acknowledged the write in time (WTimeoutError) or at all: whether
            # it stands is unknown, and retrying it is safe (every write has its id).
            raise LedgerUnavailable(f"MongoDB did not confirm a write: {error}") from error
        except OperationFailure as error:
            if error.timeout:
                raise LedgerUnavailable(f"MongoDB timed out: {error}") from error
            raise

    return guarded
