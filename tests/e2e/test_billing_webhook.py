"""The Stripe webhook: signatures, exactly-once effects, re-reads, refunds and disputes."""

import time
from pathlib import Path

import pytest

from ledger import UNITS_PER_SPU, UsageDetails
from proxy.billing.webhooks.outcomes import Outcome
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_harness import (
    BillingHarness,
    SeededCatalogue,
    running_gateway,
)

SPU = UNITS_PER_SPU


async def open_checkout(harness: BillingHarness, org_id: str, spus: int) -> str:
    """A new org opens a credit checkout; returns its session id (not paid yet)."""
    auth = await harness.new_org(org_id)
    response = await harness.client.post(
        "/billing/checkout/credits", json={"spus": spus}, headers=auth
    )
    session_id: str = response.json()["id"]
    return session_id


async def buy(harness: BillingHarness, org_id: str, spus: int, **complete: str) -> str:
    """Open a credit checkout for the org and pay it; returns the session id (events delivered)."""
    session_id = await open_checkout(harness, org_id, spus)
    await harness.deliver_all(harness.fake.complete_checkout(session_id, **complete))
    return session_id


async def spend(harness: BillingHarness, org_id: str, spus: int, request_id: str) -> None:
    await harness.store.hold(org_id, spus * SPU, request_id, ttl_s=60)
    await harness.store.settle(
        request_id, spus * SPU, UsageDetails(model="spu-demo", provider="demo")
    )


async def test_a_paid_credit_session_credits_its_line_items_exactly_once(
    harness: BillingHarness,
) -> None:
    session_id = await open_checkout(harness, "org-a", 1000)
    [completed] = harness.fake.complete_checkout(session_id)

    first = await harness.deliver(completed)
    again = await harness.deliver(completed)
    resent = harness.fake.event("checkout.session.completed", harness.fake.sessions[session_id])
    other_id = await harness.deliver(resent)

    assert first.json()["outcome"] == Outcome.CREDITED
    assert again.json()["outcome"] == Outcome.DUPLICATE
    assert other_id.json()["outcome"] == Outcome.ALREADY_CREDITED
    account = await harness.account("org-a")
    assert account.purchased_credits_units == 1000 * SPU
    assert account.granted_left_units == 100 * SPU


async def test_the_credit_comes_from_what_stripe_sold_not_from_session_metadata(
    harness: BillingHarness,
) -> None:
    session_id = await open_checkout(harness, "org-a", 300)
    harness.fake.sessions[session_id]["metadata"]["spus"] = "1000000"

    await harness.deliver_all(harness.fake.complete_checkout(session_id))

    assert (await harness.account("org-a")).purchased_credits_units == 300 * SPU


async def test_a_delayed_payment_credits_only_when_it_succeeds(harness: BillingHarness) -> None:
    session_id = await buy(harness, "org-a", 500, payment_status="unpaid")
    assert (await harness.account("org-a")).purchased_credits_units == 0

    [succeeded] = harness.fake.async_payment_succeeded(session_id)
    response = await harness.deliver(succeeded)

    assert response.json()["outcome"] == Outcome.CREDITED
    assert (await harness.account("org-a")).purchased_credits_units == 500 * SPU


@pytest.mark.parametrize(
    ("secret", "age_s", "reason"),
    [
        ("whsec_not_the_secret", 0, "signature"),
        (None, 301, "Timestamp outside the tolerance zone"),
    ],
)
async def test_a_bad_or_stale_signature_is_refused_and_nothing_is_written(
    harness: BillingHarness, secret: str | None, age_s: int, reason: str
) -> None:
    session_id = await open_checkout(harness, "org-a", 1000)
    [completed] = harness.fake.complete_checkout(session_id)
    reads_before = len(harness.fake.requests)

    kwargs = {"timestamp": int(time.time()) - age_s} | ({"secret": secret} if secret else {})
    rejected = await harness.deliver(completed, **kwargs)  # type: ignore[arg-type]

    assert rejected.status_code == 400
    assert rejected.json()["error"]["code"] == "invalid_signature"
    assert reason in rejected.json()["error"]["message"]
    assert len(harness.fake.requests) == reads_before
    assert not await harness.store.event_seen(completed["id"])
    assert (await harness.account("org-a")).purchased_credits_units == 0


async def test_a_missing_signature_is_refused(harness: BillingHarness) -> None:
    response = await harness.client.post("/billing/webhook", content=b'{"id": "evt_1"}')

    assert response.status_code == 400
    assert "Stripe-Signature" in response.json()["error"]["message"]


async def test_unknown_events_are_acknowledged_and_ignored(harness: BillingHarness) -> None:
    event = harness.fake.event("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"})

    response = await harness.deliver(event)

    assert response.status_code == 200
    assert response.json()["outcome"] == Outcome.IGNORED
    assert await harness.store.event_seen(event["id"])


async def test_a_handler_failure_answers_500_and_the_retry_credits_once(
    harness: BillingHarness,
) -> None:
    session_id = await open_checkout(harness, "org-a", 1000)
    [completed] = harness.fake.complete_checkout(session_id)
    harness.fake.fail_once("GET", r"/v1/checkout/sessions/cs_test_\w+")

    failed = await harness.deliver(completed)

    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "webhook_handler_failed"
    assert not await harness.store.event_seen(completed["id"])
    assert (await harness.account("org-a")).purchased_credits_units == 0

    retried = await harness.deliver(completed)
    replayed = await harness.deliver(completed)

    assert retried.json()["outcome"] == Outcome.CREDITED
    assert replayed.json()["outcome"] == Outcome.DUPLICATE
    assert (await harness.account("org-a")).purchased_credits_units == 1000 * SPU


async def test_partial_refunds_take_back_their_share_of_the_credits(
    harness: BillingHarness,
) -> None:
    session_id = await buy(harness, "org-a", 1000)
    charge = harness.fake.charge_of(session_id)

    await harness.deliver_all(harness.fake.refund(charge["id"], 250))
    after_first = await harness.account("org-a")
    await harness.deliver_all(harness.fake.refund(charge["id"], 750))
    after_both = await harness.account("org-a")

    assert after_first.purchased_left_units == 750 * SPU
    assert after_both.purchased_left_units == 0
    assert after_both.debt_units == 0
    assert after_both.granted_left_units == 100 * SPU


async def test_a_refund_of_spent_credits_records_the_spent_part_as_debt(
    harness: BillingHarness,
) -> None:
    session_id = await buy(harness, "org-a", 1000)
    await spend(harness, "org-a", 700, "req-spend")

    events = harness.fake.refund(harness.fake.charge_of(session_id)["id"], 1000)
    await harness.deliver_all(events)
    await harness.deliver_all([harness.fake.event(e["type"], e["data"]["object"]) for e in events])

    account = await harness.account("org-a")
    assert account.purchased_left_units == 0
    assert account.debt_units == 700 * SPU
    assert account.granted_left_units == 100 * SPU


async def test_a_dispute_takes_back_what_refunds_have_not(harness: BillingHarness) -> None:
    session_id = await buy(harness, "org-a", 1000)
    charge_id = harness.fake.charge_of(session_id)["id"]
    await harness.deliver_all(harness.fake.refund(charge_id, 300))

    [disputed] = harness.fake.dispute(charge_id)
    response = await harness.deliver(disputed)

    assert response.json()["outcome"] == Outcome.DISPUTE_TAKEN_BACK
    account = await harness.account("org-a")
    assert account.purchased_left_units == 0
    assert account.debt_units == 0


async def test_price_events_reload_the_catalogue(
    harness: BillingHarness, seeded: SeededCatalogue
) -> None:
    fake = harness.fake
    richer = fake.add_price(
        seeded.product["id"],
        unit_amount=2000,
        interval="month",
        metadata={"price_type": "base", "tier": "individual", "included_spus": "6000"},
    )
    archived = fake.archive_price(seeded.individual["id"])

    await harness.deliver_all([fake.event("price.created", richer), archived])

    catalogue = harness.billing.catalogue.current
    assert catalogue is not None
    plan = catalogue.plan_for_tier("individual")
    assert plan is not None and plan.price_id == richer["id"]
    assert catalogue.issues == ()


async def subscribe(harness: BillingHarness, org_id: str, tier: str = "individual") -> list[dict]:
    auth = await harness.new_org(org_id)
    response = await harness.client.post(
        "/billing/checkout/subscription", json={"tier": tier}, headers=auth
    )
    return harness.fake.complete_checkout(response.json()["id"])


async def test_subscription_events_delivered_out_of_order_never_roll_the_plan_back(
    harness: BillingHarness,
) -> None:
    started = await subscribe(harness, "org-a")
    customer_id = started[0]["data"]["object"]["customer"]
    subscription_id = harness.fake.subscription_of(customer_id)["id"]
    renewed = harness.fake.renew(subscription_id)
    item = harness.fake.subscriptions[subscription_id]["items"]["data"][0]

    await harness.deliver_all(renewed + started)

    account = await harness.account("org-a")
    assert account.subscription_type == "individual"
    assert int(account.period_start.timestamp()) == item["current_period_start"]  # type: ignore[union-attr]
    assert account.subscription_left_units == 5000 * SPU

    ended = harness.fake.cancel(subscription_id)
    await harness.deliver_all(ended + renewed)

    account = await harness.account("org-a")
    assert (account.subscription_type, account.subscription_status) == ("free", "canceled")
    assert account.subscription_allowance_units == 0


async def test_a_past_due_plan_carries_no_allowance_until_it_is_paid(
    harness: BillingHarness,
) -> None:
    await harness.deliver_all(await subscribe(harness, "org-a"))
    customer_id = (await harness.account("org-a")).stripe_customer_id
    assert customer_id is not None
    subscription_id = harness.fake.subscription_of(customer_id)["id"]
    await spend(harness, "org-a", 1000, "req-before")

    await harness.deliver_all(harness.fake.set_status(subscription_id, "past_due"))
    past_due = await harness.account("org-a")
    await harness.deliver_all(harness.fake.set_status(subscription_id, "active"))
    active = await harness.account("org-a")

    assert (past_due.subscription_status, past_due.subscription_left_units) == ("past_due", 0)
    assert (active.subscription_status, active.subscription_left_units) == ("active", 4000 * SPU)


async def test_events_for_customers_of_no_org_are_acknowledged(harness: BillingHarness) -> None:
    event = harness.fake.event(
        "customer.subscription.updated",
        {"id": "sub_x", "object": "subscription", "customer": "cus_x"},
    )

    response = await harness.deliver(event)

    assert response.status_code == 200
    assert response.json()["outcome"] == Outcome.UNKNOWN_CUSTOMER


async def test_without_a_webhook_secret_the_webhook_answers_503(
    fake: FakeStripe, seeded: SeededCatalogue, tmp_path: Path
) -> None:
    async with running_gateway(fake, tmp_path / "other.db", stripe_webhook_secret=None) as harness:
        response = await harness.deliver(harness.fake.event("price.updated", seeded.credit))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "webhook_not_configured"
    assert response.headers["retry-after"] == "3600"
