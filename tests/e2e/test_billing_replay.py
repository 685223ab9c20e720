"""Stripe delivers at least once, late and out of order: five shuffled, concurrent deliveries
of every event of a scenario must leave the ledger exactly as one in-order delivery did."""

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from ledger import CreditKind, LedgerStore, spus_to_units
from ledger.verify import verify
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_harness import BillingHarness, running_gateway, seed_catalogue

ORG = "org-a"
ALLOWANCE_KINDS = {CreditKind.ALLOWANCE, CreditKind.ALLOWANCE_EXPIRED}


async def live_scenario(harness: BillingHarness, *, cancel: bool) -> list[dict[str, Any]]:
    """Each step's events are delivered in order as it happens; all of them are returned."""
    fake, client = harness.fake, harness.client
    auth = await harness.new_org(ORG)
    delivered: list[dict[str, Any]] = []

    async def step(events: list[dict[str, Any]]) -> None:
        await harness.deliver_all(events)
        delivered.extend(events)

    first = await client.post("/billing/checkout/credits", json={"spus": 1000}, headers=auth)
    await step(fake.complete_checkout(first.json()["id"]))
    plan = await client.post(
        "/billing/checkout/subscription", json={"tier": "individual"}, headers=auth
    )
    await step(fake.complete_checkout(plan.json()["id"]))
    second = await client.post("/billing/checkout/credits", json={"spus": 500}, headers=auth)
    await step(fake.complete_checkout(second.json()["id"], payment_status="unpaid"))
    await step(fake.async_payment_succeeded(second.json()["id"]))
    await step(fake.refund(fake.charge_of(first.json()["id"])["id"], 250))
    await step(fake.dispute(fake.charge_of(second.json()["id"])["id"]))
    customer_id = (await harness.account(ORG)).stripe_customer_id
    assert customer_id is not None
    subscription_id = fake.subscription_of(customer_id)["id"]
    await step(fake.renew(subscription_id))
    product_id = fake.subscriptions[subscription_id]["items"]["data"][0]["price"]["product"]
    richer = fake.add_price(
        product_id,
        unit_amount=2000,
        interval="month",
        metadata={"price_type": "base", "tier": "individual", "included_spus": "6000"},
    )
    old_price = fake.subscriptions[subscription_id]["items"]["data"][0]["price"]["id"]
    await step([fake.event("price.created", richer), fake.archive_price(old_price)])
    await step(fake.renew(subscription_id))
    if cancel:
        await step(fake.cancel(subscription_id))
    return delivered


async def ledger_state(store: LedgerStore) -> tuple[Any, ...]:
    """Everything the ledger holds for the org, minus wall-clock stamps and allowance audit
    lines (one delivery sees each period in turn; a replay only the current one)."""
    account = await store.get_account(ORG)
    transactions = await store.credit_transactions(ORG, limit=1000)
    return (
        account.stripe_customer_id,
        account.subscription_type,
        account.subscription_status,
        account.subscription_price_id,
        account.subscription_item_id,
        account.subscription_allowance_units,
        account.subscription_used_units,
        account.period_start,
        account.period_end,
        account.purchased_credits_units,
        account.purchased_used_units,
        account.granted_credits_units,
        account.granted_used_units,
        account.debt_units,
        sorted(
            (t.kind.value, t.amount_units, t.reason)
            for t in transactions
            if t.kind not in ALLOWANCE_KINDS
        ),
    )


async def replay(
    fake: FakeStripe, ledger_path: Path, customer_id: str, events: list[dict[str, Any]], copies: int
) -> tuple[Any, ...]:
    """A fresh ledger for the same org and customer, then the events: shuffled and concurrent
    when ``copies`` > 1, once and in order otherwise."""
    async with running_gateway(fake, ledger_path) as harness:
        await harness.store.create_account(ORG, free_grant_units=spus_to_units(100))
        await harness.store.set_stripe_customer(ORG, customer_id)
        deliveries = events * copies
        if copies > 1:
            random.Random(copies).shuffle(deliveries)
            responses = await asyncio.gather(*(harness.deliver(event) for event in deliveries))
        else:
            responses = [await harness.deliver(event) for event in deliveries]
        assert {r.status_code for r in responses} == {200}
        for event in events:
            assert await harness.store.event_seen(event["id"])
        _, violations = await verify(harness.store)
        assert violations == []
        return await ledger_state(harness.store)


@pytest.mark.parametrize("cancel", [False, True], ids=["ends-subscribed", "ends-canceled"])
async def test_five_shuffled_concurrent_deliveries_equal_one_in_order_delivery(
    tmp_path: Path, cancel: bool
) -> None:
    fake = FakeStripe()
    seed_catalogue(fake)
    async with running_gateway(fake, tmp_path / "live.db") as harness:
        events = await live_scenario(harness, cancel=cancel)
        live = await ledger_state(harness.store)
        customer_id = (await harness.account(ORG)).stripe_customer_id
    assert customer_id is not None

    in_order = await replay(fake, tmp_path / "in-order.db", customer_id, events, copies=1)
    shuffled = await replay(fake, tmp_path / "shuffled.db", customer_id, events, copies=5)

    assert in_order == live
    assert shuffled == live
    purchased = [line for line in live[-1] if line[0] == "purchase"]
    taken_back = [line for line in live[-1] if line[0] == "refund"]
    assert [amount for _, amount, _ in sorted(purchased)] == [
        spus_to_units(500),
        spus_to_units(1000),
    ]
    assert sorted(amount for _, amount, _ in taken_back) == [
        -spus_to_units(500),
        -spus_to_units(250),
    ]
