"""Accounts: the free grant, Stripe customers, listing."""

import asyncio

import pytest

from ledger.errors import AccountNotFound, IdempotencyConflict
from ledger.models import CreditKind
from ledger.store import LedgerStore
from ledger.verify import verify
from tests.contract.support import DETAILS, FREE_GRANT, SPU


async def test_new_account_gets_the_free_grant_exactly_once(store: LedgerStore) -> None:
    first = await store.create_account("org-1", free_grant_units=FREE_GRANT, user_email="a@x.io")
    again = await store.create_account("org-1", free_grant_units=FREE_GRANT)

    assert first.granted_left_units == again.granted_left_units == FREE_GRANT
    assert again.user_email == "a@x.io"
    transactions = await store.credit_transactions("org-1")
    assert [(t.kind, t.amount_units) for t in transactions] == [(CreditKind.FREE_TIER, FREE_GRANT)]
    assert (await store.balance("org-1")).available_units == FREE_GRANT


async def test_twenty_concurrent_creations_grant_once(store: LedgerStore) -> None:
    accounts = await asyncio.gather(
        *(store.create_account("org-1", free_grant_units=FREE_GRANT) for _ in range(20))
    )

    assert {account.granted_left_units for account in accounts} == {FREE_GRANT}
    assert len(await store.credit_transactions("org-1")) == 1
    assert (await store.balance("org-1")).available_units == FREE_GRANT


async def test_account_without_free_grant_starts_empty(store: LedgerStore) -> None:
    account = await store.create_account("org-1", free_grant_units=0)

    assert account.net_balance_units == 0
    assert await store.credit_transactions("org-1") == []


async def test_unknown_org_is_account_not_found(store: LedgerStore) -> None:
    with pytest.raises(AccountNotFound):
        await store.get_account("nobody")
    with pytest.raises(AccountNotFound):
        await store.balance("nobody")
    with pytest.raises(AccountNotFound):
        await store.hold("nobody", SPU, "req-1", 60)
    with pytest.raises(AccountNotFound):
        await store.credit_purchase("cs_1", "nobody", SPU)


async def test_accounts_are_listed_in_pages_by_org_id(store: LedgerStore) -> None:
    for org_id in ("org-c", "org-a", "org-b"):
        await store.create_account(org_id, free_grant_units=FREE_GRANT)

    first_page = await store.list_accounts(limit=2)
    second_page = await store.list_accounts(limit=2, after_org_id=first_page[-1].org_id)

    assert [a.org_id for a in first_page] == ["org-a", "org-b"]
    assert [a.org_id for a in second_page] == ["org-c"]


async def test_an_org_keeps_its_first_stripe_customer(store: LedgerStore) -> None:
    await store.create_account("org-1", free_grant_units=FREE_GRANT)

    assert await store.set_stripe_customer("org-1", "cus_1") == "cus_1"
    assert await store.set_stripe_customer("org-1", "cus_2") == "cus_1"
    assert (await store.get_account("org-1")).stripe_customer_id == "cus_1"
    assert await store.find_org_by_stripe_customer("cus_1") == "org-1"
    assert await store.find_org_by_stripe_customer("cus_2") is None


async def test_concurrent_customer_creation_leaves_one_customer(store: LedgerStore) -> None:
    await store.create_account("org-1", free_grant_units=FREE_GRANT)

    chosen = await asyncio.gather(
        *(store.set_stripe_customer("org-1", f"cus_{n}") for n in range(10))
    )

    assert len(set(chosen)) == 1
    assert (await store.get_account("org-1")).stripe_customer_id == chosen[0]


async def test_a_customer_of_one_org_is_refused_for_another(store: LedgerStore) -> None:
    for org_id in ("org-1", "org-2"):
        await store.create_account(org_id, free_grant_units=FREE_GRANT)
    await store.set_stripe_customer("org-1", "cus_1")

    with pytest.raises(IdempotencyConflict):
        await store.set_stripe_customer("org-2", "cus_1")
    assert (await store.get_account("org-2")).stripe_customer_id is None


async def test_ping_succeeds_on_an_open_store(store: LedgerStore) -> None:
    await store.ping()


async def test_verify_checks_every_org_and_finds_nothing_on_a_healthy_store(
    store: LedgerStore,
) -> None:
    for org_id in ("org-1", "org-2", "org-3"):
        await store.create_account(org_id, free_grant_units=FREE_GRANT)
    await store.hold("org-1", 10 * SPU, "req-1", 60)
    await store.settle("req-1", 30 * SPU, DETAILS)
    await store.hold("org-2", 10 * SPU, "req-2", 60)
    await store.credit_purchase("cs_1", "org-3", 5 * SPU)

    checked, violations = await verify(store)

    assert (checked, violations) == (3, [])
