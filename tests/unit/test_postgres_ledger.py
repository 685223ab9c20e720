"""PostgreSQL internals the contract suite cannot see: migrations, batches, racing replicas."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from ledger.errors import IdempotencyConflict, LedgerUnavailable
from ledger.models import CreditResult
from ledger.postgres import PostgresLedger
from ledger.postgres.schema import SCHEMA_VERSION
from ledger.postgres.store import PostgresEngine
from ledger.sql.ledger import Write
from ledger.sql.routine import Command, Query, Routine
from ledger.units import UNITS_PER_SPU
from tests.contract.support import DETAILS
from tests.stores import fresh_database, needs_postgres

pytestmark = needs_postgres


@pytest.fixture
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[PostgresEngine]:
    opened = PostgresEngine(database_url, max_batch=64)
    await opened.open()
    yield opened
    await opened.close()


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT version FROM ledger_schema_versions ORDER BY version")
        return [row[0] for row in rows]


async def test_replicas_opening_at_once_migrate_once(database_url: str) -> None:
    stores = [PostgresLedger(database_url) for _ in range(6)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        assert _versions(database_url) == list(range(1, SCHEMA_VERSION + 1))
        await stores[0].create_account("org-1", free_grant_units=5)
        assert (await stores[-1].get_account("org-1")).granted_left_units == 5
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_a_database_newer_than_the_code_is_refused(database_url: str) -> None:
    await (store := PostgresLedger(database_url)).open()
    await store.close()
    with psycopg.connect(database_url) as connection:
        connection.execute(
            "INSERT INTO ledger_schema_versions (version) VALUES (%s)", (SCHEMA_VERSION + 1,)
        )
    with pytest.raises(LedgerUnavailable, match="newer than this gateway"):
        await PostgresLedger(database_url).open()


async def test_an_unreachable_server_fails_closed() -> None:
    store = PostgresLedger("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(LedgerUnavailable):
        await store.open()


def _insert_event(event_id: str, *, then: BaseException | None = None) -> Routine[str]:
    yield (
        Command(
            "INSERT INTO processed_events (event_id, kind, processed_at_ms) VALUES (?1, 'test', 0)"
        ),
        (event_id,),
    )
    if then is not None:
        raise then
    return event_id


def _refuse_before_writing() -> Routine[None]:
    yield Query("SELECT 1"), ()
    raise ValueError("refused before writing")


def _violate_a_check() -> Routine[None]:
    yield (
        Command(
            "INSERT INTO accounts (org_id, debt_units, created_at_ms, updated_at_ms)"
            " VALUES ('bad', -1, 0, 0)"
        ),
        (),
    )


def _events(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT event_id FROM processed_events ORDER BY event_id")
        return [row[0] for row in rows]


async def test_failures_in_a_batch_leave_no_trace_and_spare_their_neighbours(
    engine: PostgresEngine, database_url: str
) -> None:
    routines = [
        lambda: _insert_event("a"),
        lambda: _insert_event("b", then=ValueError("raised after writing")),
        _refuse_before_writing,
        _violate_a_check,
        lambda: _insert_event("c"),
    ]
    # Submitted in one loop turn, so they are queued before the batch writer runs: one batch.
    outcomes = await asyncio.gather(
        *(engine.write(Write(routine)) for routine in routines), return_exceptions=True
    )
    assert outcomes[0] == "a" and outcomes[4] == "c"
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], ValueError)
    assert isinstance(outcomes[3], psycopg.errors.CheckViolation)
    assert _events(database_url) == ["a", "c"]


async def test_two_replicas_crediting_one_id_for_two_orgs_conflict_cleanly(
    database_url: str,
) -> None:
    first, second = PostgresLedger(database_url), PostgresLedger(database_url)
    await first.open()
    await second.open()
    try:
        await first.create_account("org-a", free_grant_units=0)
        await first.create_account("org-b", free_grant_units=0)
        for n in range(20):
            outcomes = await asyncio.gather(
                first.credit_purchase(f"cs_{n}", "org-a", UNITS_PER_SPU),
                second.credit_purchase(f"cs_{n}", "org-b", UNITS_PER_SPU),
                return_exceptions=True,
            )
            applied = [o for o in outcomes if isinstance(o, CreditResult) and o.applied]
            conflicts = [o for o in outcomes if isinstance(o, IdempotencyConflict)]
            assert (len(applied), len(conflicts)) == (1, 1), outcomes
        a, b = await first.get_account("org-a"), await first.get_account("org-b")
        assert a.purchased_left_units + b.purchased_left_units == 20 * UNITS_PER_SPU
    finally:
        await first.close()
        await second.close()


async def test_a_hold_placed_by_another_replica_settles_here(database_url: str) -> None:
    """The settling process did not place the hold: it finds the hold's org to lock it."""
    placing, settling = PostgresLedger(database_url), PostgresLedger(database_url)
    await placing.open()
    await settling.open()
    try:
        await placing.create_account("org-1", free_grant_units=10 * UNITS_PER_SPU)
        await placing.hold("org-1", UNITS_PER_SPU, "req-1", 60)
        settled = await settling.settle("req-1", UNITS_PER_SPU // 2, DETAILS)
        assert settled.available_units == 10 * UNITS_PER_SPU - UNITS_PER_SPU // 2
        assert await settling.release("req-1") is False
    finally:
        await placing.close()
        await settling.close()
