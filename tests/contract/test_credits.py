"""Purchases, grants and refunds: each id credits at most once, debt is paid first."""

import asyncio

import pytest

from ledger.errors import IdempotencyConflict
from ledger.models import CreditKind
from ledger.store import LedgerStore
from tests.contract.conftest import FakeClock, assert_verified
from tests.contract.support import DETAILS, FREE_GRANT, SPU, new_org, spend


async def test_a_checkout_session_credited_fifty_times_at_once_credits_once(
    store: LedgerStore,
) -> None:
    org = await new_org(store)

    results = await asyncio.gather(
        *(store.credit_purchase("cs_1", org, 50 * SPU) for _ in range(50))
    )

    assert sum(result.applied for result in results) == 1
    assert {result.transaction.transaction_id for result in results} == {
        results[0].transaction.transaction_id
    }
    account = await store.get_account(org)
    assert account.purchased_left_units == 50 * SPU
    purchases = [t for t in await store.credit_transactions(org) if t.kind is CreditKind.PURCHASE]
    assert len(purchases) == 1
    assert purchases[0].amount_units == 50 * SPU


async def test_a_session_reused_with_another_amount_conflicts(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.credit_purchase("cs_1", org, 50 * SPU)

    with pytest.raises(IdempotencyConflict):
        await store.credit_purchase("cs_1", org, 60 * SPU)
    assert (await store.get_account(org)).purchased_left_units == 50 * SPU


async def test_grants_are_idempotent_by_key(store: LedgerStore) -> None:
    org = await new_org(store)

    first = await store.grant(org, 5 * SPU, "support", "ticket-1")
    again = await store.grant(org, 5 * SPU, "support", "ticket-1")
    other = await store.grant(org, 5 * SPU, "support", "ticket-2")

    assert (first.applied, again.applied, other.applied) == (True, False, True)
    assert again.transaction == first.transaction
    assert first.transaction.kind is CreditKind.GRANT
    assert first.transaction.reason == "support"
    assert (await store.get_account(org)).granted_left_units == FREE_GRANT + 10 * SPU


async def test_credits_must_be_positive(store: LedgerStore) -> None:
    org = await new_org(store)
    with pytest.raises(ValueError):
        await store.credit_purchase("cs_1", org, 0)
    with pytest.raises(ValueError):
        await store.grant(org, -SPU, "oops", "k-1")
    with pytest.raises(ValueError):
        await store.refund_purchase("re_1", org, 0, "oops")


async def test_a_grant_pays_debt_before_it_adds_credit(store: LedgerStore) -> None:
    org = await new_org(store, grant_units=0)
    await store.credit_purchase("cs_1", org, 10 * SPU)
    await spend(store, org, 14 * SPU, "req-1", hold_units=10 * SPU)

    granted = await store.grant(org, 3 * SPU, "promo", "promo-1")

    assert granted.transaction.debt_paid_units == 3 * SPU
    account = await store.get_account(org)
    assert (account.debt_units, account.granted_left_units) == (SPU, 0)


async def test_refund_takes_back_unspent_purchased_credits(store: LedgerStore) -> None:
    org = await new_org(store)
    await store.credit_purchase("cs_1", org, 50 * SPU)

    refunded = await store.refund_purchase("re_1", org, 20 * SPU, "customer asked")

    assert refunded.applied
    assert refunded.transaction.kind is CreditKind.REFUND
    assert refunded.transaction.amount_units == -20 * SPU
    account = await store.get_account(org)
    assert (account.purchased_left_units, account.debt_units) == (30 * SPU, 0)
    assert account.granted_left_units == FREE_GRANT


async def test_refund_of_spent_credits_records_the_rest_as_debt(store: LedgerStore) -> None:
    org = await new_org(store, grant_units=0)
    await store.credit_purchase("cs_1", org, 50 * SPU)
    await spend(store, org, 40 * SPU, "req-1")

    await store.refund_purchase("re_1", org, 50 * SPU, "chargeback")
    again = await store.refund_purchase("re_1", org, 50 * SPU, "chargeback")

    assert not again.applied
    account = await store.get_account(org)
    assert (account.purchased_left_units, account.debt_units) == (0, 40 * SPU)
    assert (await store.balance(org)).available_units == 0


async def test_refund_while_a_hold_is_open_leaves_the_store_consistent(
    store: LedgerStore,
) -> None:
    org = await new_org(store, grant_units=0)
    await store.credit_purchase("cs_1", org, 50 * SPU)
    await store.hold(org, 40 * SPU, "req-1", 60)

    await store.refund_purchase("re_1", org, 50 * SPU, "chargeback")
    await assert_verified(store)
    result = await store.settle("req-1", 30 * SPU, DETAILS)

    assert result.record.split.debt_units == 30 * SPU
    assert (await store.get_account(org)).debt_units == 30 * SPU


async def test_credit_transactions_list_newest_first(store: LedgerStore, clock: FakeClock) -> None:
    org = await new_org(store)
    clock.advance(1)
    await store.credit_purchase("cs_1", org, 10 * SPU)
    clock.advance(1)
    await store.grant(org, 5 * SPU, "promo", "promo-1")

    listed = await store.credit_transactions(org)

    assert [t.kind for t in listed] == [CreditKind.GRANT, CreditKind.PURCHASE, CreditKind.FREE_TIER]
    assert [t.kind for t in await store.credit_transactions(org, limit=1)] == [CreditKind.GRANT]
