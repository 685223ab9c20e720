"""What each OS process of the multi-process test runs: many concurrent calls on one org,
on the store a ledger URL names (a SQLite file or a PostgreSQL database).

A module of its own so that spawned processes import it without importing pytest
test modules.
"""

import asyncio
import multiprocessing.synchronize
from dataclasses import dataclass, replace

from ledger.factory import open_store
from ledger.models import HoldPlaced, HoldRefused, UsageDetails
from ledger.store import LedgerStore

DETAILS = UsageDetails(model="gpt-4o-mini", provider="openai", total_tokens=1)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One request as its caller saw it: accepted and charged, or refused with figures."""

    request_id: str
    accepted: bool
    charged_units: int = 0
    available_units: int = 0
    needed_units: int = 0
    limit_source: str = ""


async def _one_call(
    store: LedgerStore,
    org_id: str,
    request_id: str,
    hold_units: int,
    charge_units: int,
    start_delay_s: float,
    key_id: str | None,
) -> CallOutcome:
    await asyncio.sleep(start_delay_s)
    placed = await store.hold(org_id, hold_units, request_id, ttl_s=120, key_id=key_id)
    if isinstance(placed, HoldRefused):
        return CallOutcome(
            request_id,
            False,
            available_units=placed.available_units,
            needed_units=placed.needed_units,
            limit_source=placed.limit_source.value,
        )
    assert isinstance(placed, HoldPlaced), placed
    details = replace(DETAILS, key_id=key_id)
    settled = await store.settle(request_id, charge_units, details)
    return CallOutcome(request_id, True, charged_units=settled.record.charged_units)


async def _calls(
    url: str,
    org_id: str,
    worker: int,
    tasks: int,
    hold_units: int,
    key_id: str | None,
    start_together: multiprocessing.synchronize.Barrier,
) -> list[CallOutcome]:
    store = open_store(url)
    await store.open()
    try:
        # Open first, then wait for the others, so that all four writers really race.
        await asyncio.to_thread(start_together.wait, 60)
        calls = (
            # Staggered starts and charges of 25-100 % of the hold make holds and settlements
            # of the four processes interleave, freeing credit at random moments.
            _one_call(
                store,
                org_id,
                f"w{worker}-t{n}",
                hold_units,
                hold_units * (n % 4 + 1) // 4,
                n % 8 / 500,
                key_id,
            )
            for n in range(tasks)
        )
        return list(await asyncio.gather(*calls))
    finally:
        await store.close()


def run_call_worker(
    url: str,
    org_id: str,
    worker: int,
    tasks: int,
    hold_units: int,
    key_id: str | None,
    start_together: multiprocessing.synchronize.Barrier,
) -> list[CallOutcome]:
    """``tasks`` calls on the org (on ``key_id``'s limits when given) from this process."""
    return asyncio.run(_calls(url, org_id, worker, tasks, hold_units, key_id, start_together))


async def _credits(
    url: str,
    org_id: str,
    sessions: list[str],
    amount_units: int,
    start_together: multiprocessing.synchronize.Barrier,
) -> int:
    store = open_store(url)
    await store.open()
    try:
        await asyncio.to_thread(start_together.wait, 60)
        created = store.create_account(org_id, free_grant_units=amount_units)
        credited = [store.credit_purchase(s, org_id, amount_units) for s in sessions]
        results = await asyncio.gather(created, *credited)
        return sum(result.applied for result in results[1:])
    finally:
        await store.close()


def run_credit_worker(
    url: str,
    org_id: str,
    sessions: list[str],
    amount_units: int,
    start_together: multiprocessing.synchronize.Barrier,
) -> int:
    """Create the org and credit every session; returns how many credits this process applied."""
    return asyncio.run(_credits(url, org_id, sessions, amount_units, start_together))
