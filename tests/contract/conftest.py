"""One contract suite, every backend: SQLite and PostgreSQL (``TEST_POSTGRES_URL``, which the
test command always sets), MongoDB when TEST_MONGODB_URL is set.

Every test gets a fresh store on a ``FakeClock``; when the test is done the
store must still pass ``verify`` (conservation, no negative bucket, one usage
record per settled hold), whatever the test did to it.
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack

import pytest

from ledger.clock import Clock
from ledger.store import LedgerStore
from ledger.verify import verify
from tests.stores import fresh_database, needs_postgres


class FakeClock:
    """Epoch seconds that a test moves by hand (hold expiry, period rollovers)."""

    def __init__(self, start_s: float = 1_800_000_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=needs_postgres),
    *(["mongodb"] if os.environ.get("TEST_MONGODB_URL") else []),
]


def build_store(
    backend: str, tmp_path_factory: pytest.TempPathFactory, clock: Clock, stack: ExitStack
) -> LedgerStore:
    if backend == "sqlite":
        from ledger.sqlite import SqliteLedger

        return SqliteLedger(tmp_path_factory.mktemp("ledger") / "ledger.db", clock=clock)
    if backend == "postgresql":
        from ledger.postgres import PostgresLedger

        return PostgresLedger(stack.enter_context(fresh_database()), clock=clock)
    from ledger.mongo import MongoLedger

    database = f"spu_contract_{uuid.uuid4().hex[:12]}"
    return MongoLedger(os.environ["TEST_MONGODB_URL"], database=database, clock=clock)


async def assert_verified(store: LedgerStore) -> None:
    """The store's invariants hold for every org in it."""
    _, violations = await verify(store)
    assert violations == []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> AsyncIterator[LedgerStore]:
    with ExitStack() as stack:
        ledger = build_store(request.param, tmp_path_factory, clock, stack)
        await ledger.open()
        try:
            yield ledger
            await assert_verified(ledger)
        finally:
            await ledger.close()
            drop = getattr(ledger, "drop_database", None)
            if drop is not None:
                await drop()
