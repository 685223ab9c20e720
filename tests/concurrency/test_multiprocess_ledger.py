"""Four OS processes, each with many concurrent tasks, writing ONE org on one store: a SQLite
file, and a PostgreSQL database (each process with its own connection pool, as replicas).

Whatever order the four writers commit in, credit is never spent twice: the
debits stay within the balance, each accepted call has exactly one usage
record, refused calls leave nothing behind, every id credits once, and the
books balance to the unit. Calls on one key with a budget never settle past it,
on every backend of the contract suite (MongoDB too when TEST_MONGODB_URL is set).
"""

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from ledger.factory import open_store
from ledger.key_limits import BudgetPeriod, KeyLimits
from ledger.models import AccessKey, CreditKind
from ledger.store import LedgerStore
from ledger.units import UNITS_PER_SPU
from ledger.verify import verify
from tests.concurrency.ledger_workers import run_call_worker, run_credit_worker
from tests.stores import query

T = TypeVar("T")

PROCESSES = 4
TASKS_PER_PROCESS = 50
CALLS = PROCESSES * TASKS_PER_PROCESS
HOLD_UNITS = 10 * UNITS_PER_SPU
# Calls charge 1/4 to 4/4 of their hold, 5/8 on average: the balance pays for about half.
BALANCE_UNITS = CALLS * HOLD_UNITS * 5 // 16
ORG_ID = "org-shared"
KEY_ID = "key-shared"
KEY_BUDGET_UNITS = CALLS * HOLD_UNITS * 5 // 24
"""About a third of what the calls would spend (5/8 of their holds on average)."""


def _in_processes(worker: Callable[..., T], arguments: list[tuple[object, ...]]) -> list[T]:
    """Run ``worker`` once per argument tuple, each in its own spawned process, all at once."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        start_together = manager.Barrier(len(arguments))
        futures = [pool.submit(worker, *args, start_together) for args in arguments]
        return [future.result(timeout=120) for future in futures]


async def _open(url: str) -> LedgerStore:
    store = open_store(url)
    await store.open()
    return store


async def test_four_processes_never_spend_credit_twice(ledger_url: str) -> None:
    store = await _open(ledger_url)
    await store.create_account(ORG_ID, free_grant_units=BALANCE_UNITS)
    await store.close()

    arguments = [
        (ledger_url, ORG_ID, worker, TASKS_PER_PROCESS, HOLD_UNITS, None)
        for worker in range(PROCESSES)
    ]
    per_process = await asyncio.to_thread(_in_processes, run_call_worker, arguments)

    outcomes = [outcome for outcomes in per_process for outcome in outcomes]
    assert len(outcomes) == CALLS
    accepted = {o.request_id: o.charged_units for o in outcomes if o.accepted}
    refused = [o for o in outcomes if not o.accepted]
    assert accepted and refused, "the balance should pay for some calls, not all"
    assert all(o.needed_units > o.available_units for o in refused)
    assert {o.limit_source for o in refused} == {"org"}
    charged_total = sum(accepted.values())
    assert charged_total <= BALANCE_UNITS

    assert (
        dict(query(ledger_url, "SELECT request_id, charged_units FROM usage_records")) == accepted
    )
    holds = query(ledger_url, "SELECT state, COUNT(*) FROM holds GROUP BY state")
    assert holds == [("settled", len(accepted))]
    [buckets] = query(
        ledger_url,
        "SELECT subscription_allowance_units - subscription_used_units,"
        " purchased_credits_units - purchased_used_units,"
        " granted_credits_units - granted_used_units, debt_units, open_hold_units"
        " FROM accounts",
    )
    assert min(buckets) >= 0
    assert buckets == (0, 0, BALANCE_UNITS - charged_total, 0, 0)
    store = await _open(ledger_url)
    try:
        assert await verify(store) == (1, [])
        assert (await store.balance(ORG_ID)).available_units == BALANCE_UNITS - charged_total
    finally:
        await store.close()


async def test_four_processes_create_and_credit_each_id_once(ledger_url: str) -> None:
    await (await _open(ledger_url)).close()
    sessions = [f"cs_{n}" for n in range(25)]

    arguments = [(ledger_url, ORG_ID, sessions, UNITS_PER_SPU) for _ in range(PROCESSES)]
    applied = await asyncio.to_thread(_in_processes, run_credit_worker, arguments)

    assert sum(applied) == len(sessions)
    store = await _open(ledger_url)
    try:
        kinds = [t.kind for t in await store.credit_transactions(ORG_ID, limit=1_000)]
        assert kinds.count(CreditKind.FREE_TIER) == 1
        assert kinds.count(CreditKind.PURCHASE) == len(sessions)
        account = await store.get_account(ORG_ID)
        assert account.granted_left_units == UNITS_PER_SPU
        assert account.purchased_left_units == len(sessions) * UNITS_PER_SPU
        assert await verify(store) == (1, [])
    finally:
        await store.close()


async def test_four_processes_never_spend_past_one_keys_budget(any_ledger_url: str) -> None:
    url = any_ledger_url
    budget_units = KEY_BUDGET_UNITS
    store = await _open(url)
    await store.create_account(ORG_ID, free_grant_units=10 * CALLS * HOLD_UNITS)
    key = AccessKey(
        KEY_ID,
        ORG_ID,
        "spu_shared",
        "d" * 64,
        "shared",
        datetime.now(UTC),
        limits=KeyLimits(budget_units=budget_units, budget_period=BudgetPeriod.DAY),
    )
    await store.add_access_key(key)
    await store.close()

    arguments = [
        (url, ORG_ID, worker, TASKS_PER_PROCESS, HOLD_UNITS, KEY_ID) for worker in range(PROCESSES)
    ]
    per_process = await asyncio.to_thread(_in_processes, run_call_worker, arguments)

    outcomes = [outcome for outcomes in per_process for outcome in outcomes]
    accepted = {o.request_id: o.charged_units for o in outcomes if o.accepted}
    refused = [o for o in outcomes if not o.accepted]
    assert len(outcomes) == CALLS and accepted and refused
    assert {o.limit_source for o in refused} == {"key_budget"}
    assert all(o.needed_units > o.available_units for o in refused)
    assert sum(accepted.values()) <= budget_units
    store = await _open(url)
    try:
        records = await store.usage_records(ORG_ID, limit=10 * CALLS)
        assert {r.request_id: r.charged_units for r in records} == accepted
        [use] = await store.key_budget_use(ORG_ID)
        assert (use.spent_units, use.held_units) == (sum(accepted.values()), 0)
        assert await verify(store) == (1, [])
    finally:
        await store.close()
