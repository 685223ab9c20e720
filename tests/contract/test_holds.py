"""Holds, settlement, release and expiry: the hot path of every metered call."""

import asyncio

import pytest

from ledger.errors import HoldNotFound, HoldNotOpen, IdempotencyConflict
from ledger.models import HoldPlaced, HoldRefused, SettleResult, UsageDetails
from ledger.store import LedgerStore
from ledger.waterfall import BucketSplit
from tests.contract.conftest import FakeClock, assert_verified
from tests.contract.support import DETAILS, FREE_GRANT, SPU, new_org, spend


async def test_hold_reserves_against_the_available_balance(store: LedgerStore) -> None:
    org = await new_org(store)

    placed = await store.hold(org, 30 * SPU, "req-1", 60, key_id="key-1")

    assert isinstance(placed, HoldPlaced)
    assert (placed.request_id, placed.org_id, placed.amount_units) == ("req-1", org, 30 * SPU)
    balance = await store.balance(org)
    assert balance.held_units == 30 * SPU
    assert balance.available_units == 70 * SPU


async def test_hold_beyond_available_is_refused_with_both_figures(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "req-1", 60)

    refused = await store.hold(org, 80 * SPU, "req-2", 60)

    assert refused == HoldRefused("req-2", org, available_units=70 * SPU, needed_units=80 * SPU)
    assert (await store.balance(org)).held_units == 30 * SPU


async def test_hold_of_exactly_the_available_balance_is_placed(store: LedgerStore) -> None:
    org = await new_org(store)

    assert isinstance(await store.hold(org, FREE_GRANT, "req-1", 60), HoldPlaced)
    refused = await store.hold(org, 1, "req-2", 60)

    assert refused == HoldRefused("req-2", org, available_units=0, needed_units=1)


async def test_same_request_and_amount_is_the_same_hold(store: LedgerStore) -> None:
    org = await new_org(store)

    first = await store.hold(org, 30 * SPU, "req-1", 60)
    again = await store.hold(org, 30 * SPU, "req-1", 60)

    assert first == again
    assert (await store.balance(org)).held_units == 30 * SPU


async def test_same_request_with_other_amount_or_org_conflicts(store: LedgerStore) -> None:
    org = await new_org(store)
    other = await new_org(store, "org-2")
    await store.hold(org, 30 * SPU, "req-1", 60)

    with pytest.raises(IdempotencyConflict):
        await store.hold(org, 31 * SPU, "req-1", 60)
    with pytest.raises(IdempotencyConflict):
        await store.hold(other, 30 * SPU, "req-1", 60)
    assert (await store.balance(other)).held_units == 0


async def test_negative_amounts_are_rejected(store: LedgerStore) -> None:
    org = await new_org(store)
    with pytest.raises(ValueError):
        await store.hold(org, -1, "req-1", 60)
    await store.hold(org, SPU, "req-2", 60)
    with pytest.raises(ValueError):
        await store.settle("req-2", -1, DETAILS)


async def test_settle_debits_the_actual_amount_and_records_usage(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "req-1", 60)
    details = UsageDetails(
        model="gpt-4o",
        provider="openai",
        key_id="key-1",
        prompt_tokens=100,
        completion_tokens=50,
        total_tokens=150,
        cost_pico_usd=1_234_567,
        latency_ms=420,
    )

    result = await store.settle("req-1", 20 * SPU, details)

    assert not result.replayed
    assert result.available_units == 80 * SPU
    assert result.record.charged_units == 20 * SPU
    assert result.record.split == BucketSplit(granted_units=20 * SPU)
    assert result.record.details == details
    balance = await store.balance(org)
    assert (balance.held_units, balance.available_units) == (0, 80 * SPU)
    [stored] = await store.usage_records(org)
    assert stored == result.record


async def test_settling_twice_with_the_same_amount_replays(store: LedgerStore) -> None:
    org = await new_org(store)
    first = await spend(store, org, 20 * SPU, "req-1")

    again = await store.settle("req-1", 20 * SPU, DETAILS)

    assert again.replayed
    assert again.record == first.record
    assert again.available_units == first.available_units
    assert len(await store.usage_records(org)) == 1
    assert (await store.balance(org)).available_units == 80 * SPU


async def test_settling_again_with_another_amount_conflicts(store: LedgerStore) -> None:
    org = await new_org(store)
    await spend(store, org, 20 * SPU, "req-1")

    with pytest.raises(IdempotencyConflict):
        await store.settle("req-1", 21 * SPU, DETAILS)
    assert (await store.balance(org)).available_units == 80 * SPU


async def test_concurrent_settlements_of_one_request_debit_once(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "req-1", 60)

    results = await asyncio.gather(*(store.settle("req-1", 25 * SPU, DETAILS) for _ in range(10)))

    assert sum(not result.replayed for result in results) == 1
    assert len({result.record for result in results}) == 1
    assert (await store.balance(org)).available_units == 75 * SPU


async def test_unknown_request_is_hold_not_found(store: LedgerStore) -> None:
    await new_org(store)
    with pytest.raises(HoldNotFound):
        await store.settle("nope", SPU, DETAILS)
    with pytest.raises(HoldNotFound):
        await store.release("nope")


async def test_release_frees_the_hold_once(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "req-1", 60)

    assert await store.release("req-1") is True
    assert await store.release("req-1") is False
    balance = await store.balance(org)
    assert (balance.held_units, balance.available_units) == (0, FREE_GRANT)
    with pytest.raises(HoldNotOpen):
        await store.settle("req-1", SPU, DETAILS)
    assert await store.usage_records(org) == []


async def test_release_after_settle_changes_nothing(store: LedgerStore) -> None:
    org = await new_org(store)
    await spend(store, org, 20 * SPU, "req-1")

    assert await store.release("req-1") is False
    assert (await store.balance(org)).available_units == 80 * SPU


async def test_settle_below_the_hold_returns_the_rest(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.hold(org, 90 * SPU, "req-1", 60)
    assert isinstance(await store.hold(org, 20 * SPU, "req-2", 60), HoldRefused)

    await store.settle("req-1", 10 * SPU, DETAILS)

    assert isinstance(await store.hold(org, 90 * SPU, "req-3", 60), HoldPlaced)


async def test_settle_beyond_the_hold_pays_only_from_unreserved_credit(
    store: LedgerStore,
) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "req-a", 60)
    await store.hold(org, 50 * SPU, "req-b", 60)

    overspent = await store.settle("req-a", 60 * SPU, DETAILS)

    # 30 reserved + 20 unreserved pay; the other 10 is debt, so req-b stays covered.
    assert overspent.record.split == BucketSplit(granted_units=50 * SPU, debt_units=10 * SPU)
    account = await store.get_account(org)
    assert (account.granted_left_units, account.debt_units) == (50 * SPU, 10 * SPU)
    covered = await store.settle("req-b", 50 * SPU, DETAILS)
    assert covered.record.split == BucketSplit(granted_units=50 * SPU)
    assert covered.available_units == 0


async def test_overspend_becomes_debt_and_the_next_credit_pays_it(store: LedgerStore) -> None:
    org = await new_org(store, grant_units=10 * SPU)

    result = await spend(store, org, 25 * SPU, "req-1", hold_units=10 * SPU)

    assert result.record.split == BucketSplit(granted_units=10 * SPU, debt_units=15 * SPU)
    assert result.available_units == 0
    assert (await store.get_account(org)).net_balance_units == -15 * SPU
    refused = await store.hold(org, 1, "req-2", 60)
    assert refused == HoldRefused("req-2", org, available_units=0, needed_units=1)
    await assert_verified(store)

    credited = await store.credit_purchase("cs_1", org, 20 * SPU)

    assert credited.transaction.debt_paid_units == 15 * SPU
    account = await store.get_account(org)
    assert (account.debt_units, account.purchased_left_units) == (0, 5 * SPU)
    assert (await store.balance(org)).available_units == 5 * SPU


async def test_expired_hold_stops_counting_before_any_sweep(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    await store.hold(org, 60 * SPU, "req-1", ttl_s=30)

    clock.advance(31)

    balance = await store.balance(org)
    assert (balance.held_units, balance.available_units) == (0, FREE_GRANT)
    assert isinstance(await store.hold(org, 90 * SPU, "req-2", 60), HoldPlaced)


async def test_hold_counts_until_its_expiry(store: LedgerStore, clock: FakeClock) -> None:
    org = await new_org(store)
    await store.hold(org, 60 * SPU, "req-1", ttl_s=30)

    clock.advance(29)

    assert (await store.balance(org)).held_units == 60 * SPU
    assert await store.expire_holds() == 0


async def test_sweep_ends_only_holds_past_their_expiry(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    await store.hold(org, 10 * SPU, "short", ttl_s=10)
    await store.hold(org, 20 * SPU, "long", ttl_s=100)
    clock.advance(11)

    assert await store.expire_holds() == 1
    assert await store.expire_holds() == 0

    assert await store.release("short") is False
    assert (await store.balance(org)).held_units == 20 * SPU
    assert await store.release("long") is True


async def test_sweep_respects_its_limit(store: LedgerStore, clock: FakeClock) -> None:
    org = await new_org(store)
    for n in range(5):
        await store.hold(org, SPU, f"req-{n}", ttl_s=10)
    clock.advance(11)

    assert await store.expire_holds(limit=3) == 3
    assert await store.expire_holds(limit=3) == 2


async def test_settle_past_expiry_before_the_sweep_succeeds(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    await store.hold(org, 30 * SPU, "req-1", ttl_s=10)
    clock.advance(11)

    result = await store.settle("req-1", 20 * SPU, DETAILS)

    assert result.record.charged_units == 20 * SPU
    assert await store.expire_holds() == 0
    assert (await store.balance(org)).available_units == 80 * SPU


async def test_settle_of_an_expired_hold_cannot_take_a_newer_reservation(
    store: LedgerStore, clock: FakeClock
) -> None:
    org = await new_org(store)
    await store.hold(org, 60 * SPU, "old", ttl_s=10)
    clock.advance(11)
    await store.hold(org, 90 * SPU, "new", ttl_s=60)

    late = await store.settle("old", 60 * SPU, DETAILS)

    # The expired hold reserves nothing: only the 10 unreserved SPU pay, the rest is debt.
    assert late.record.split == BucketSplit(granted_units=10 * SPU, debt_units=50 * SPU)
    assert (await store.settle("new", 90 * SPU, DETAILS)).record.split == BucketSplit(
        granted_units=90 * SPU
    )


@pytest.mark.parametrize("past_expiry", [False, True])
async def test_settle_and_release_race_has_one_winner_and_expiry_never_stops_a_settle(
    store: LedgerStore, clock: FakeClock, past_expiry: bool
) -> None:
    org = await new_org(store, grant_units=1_000 * SPU)
    wins = {"settle": 0, "release": 0, "expire": 0}
    for n in range(12):
        request_id = f"req-{n}"
        await store.hold(org, 10 * SPU, request_id, ttl_s=5)
        if past_expiry:
            clock.advance(6)
        calls = [
            store.settle(request_id, 7 * SPU, DETAILS),
            store.release(request_id),
            store.expire_holds(),
        ]
        if n % 2:
            calls.reverse()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        settled, released, expired = outcomes if n % 2 == 0 else outcomes[::-1]

        # Settle and release end the call: exactly one of them wins. An expiry only ends
        # the reservation: a settle that comes after it still debits.
        assert (isinstance(settled, SettleResult), released is True).count(True) == 1, outcomes
        assert not (released is True and expired == 1), outcomes
        if not isinstance(settled, SettleResult):
            assert isinstance(settled, HoldNotOpen)
        wins["settle"] += isinstance(settled, SettleResult)
        wins["release"] += released is True
        wins["expire"] += expired == 1
        await assert_verified(store)

    records = await store.usage_records(org)
    assert len(records) == wins["settle"]
    assert (await store.balance(org)).held_units == 0
    if not past_expiry:
        assert wins["expire"] == 0
