"""The life of one org through Stripe billing, end to end, as the issue tells it."""

from ledger import UNITS_PER_SPU, UsageDetails
from ledger.verify import verify
from tests.fakes.stripe_harness import BillingHarness, SeededCatalogue

SPU = UNITS_PER_SPU


async def test_grant_purchase_plan_usage_renewal_repricing_and_cancellation(
    harness: BillingHarness, seeded: SeededCatalogue
) -> None:
    fake, client = harness.fake, harness.client

    # A new org starts with its 100 granted SPUs.
    auth = await harness.new_org("org-a", grant_spus=100)

    # It buys 1,000 credits.
    bought = await client.post("/billing/checkout/credits", json={"spus": 1000}, headers=auth)
    await harness.deliver_all(fake.complete_checkout(bought.json()["id"]))
    account = await harness.account("org-a")
    assert (account.purchased_left_units, account.granted_left_units) == (1000 * SPU, 100 * SPU)

    # It subscribes to Individual: 5,000 SPUs a month.
    plan = await client.post(
        "/billing/checkout/subscription", json={"tier": "individual"}, headers=auth
    )
    await harness.deliver_all(fake.complete_checkout(plan.json()["id"]))
    account = await harness.account("org-a")
    assert account.stripe_customer_id is not None
    subscription = fake.subscription_of(account.stripe_customer_id)
    assert (account.subscription_type, account.subscription_status) == ("individual", "active")
    assert account.subscription_price_id == seeded.individual["id"]
    assert account.subscription_left_units == 5000 * SPU

    # It uses 6,000 SPUs: the allowance first, then purchased; the grant is untouched.
    await harness.store.hold("org-a", 6000 * SPU, "req-6000", ttl_s=60)
    settled = await harness.store.settle(
        "req-6000", 6000 * SPU, UsageDetails(model="spu-demo", provider="demo")
    )
    split = settled.record.split
    assert (split.subscription_units, split.purchased_units, split.granted_units) == (
        5000 * SPU,
        1000 * SPU,
        0,
    )
    account = await harness.account("org-a")
    assert (
        account.subscription_left_units,
        account.purchased_left_units,
        account.granted_left_units,
    ) == (0, 0, 100 * SPU)

    # The period renews: the allowance is back to 5,000 (once, however often Stripe tells us).
    renewal = fake.renew(subscription["id"])
    await harness.deliver_all(renewal)
    await harness.deliver_all([fake.event(e["type"], e["data"]["object"]) for e in renewal])
    account = await harness.account("org-a")
    assert account.subscription_left_units == 5000 * SPU
    assert account.subscription_used_units == 0

    # Individual now includes 6,000 for new subscribers: a new price, the old one archived.
    richer = fake.add_price(
        seeded.product["id"],
        unit_amount=2000,
        interval="month",
        metadata={"price_type": "base", "tier": "individual", "included_spus": "6000"},
    )
    await harness.deliver_all(
        [fake.event("price.created", richer), fake.archive_price(seeded.individual["id"])]
    )
    newcomer = await harness.new_org("org-b")
    offer = await client.post(
        "/billing/checkout/subscription", json={"tier": "individual"}, headers=newcomer
    )
    assert offer.json()["included_spus"] == "6000"
    await harness.deliver_all(fake.complete_checkout(offer.json()["id"]))
    assert (await harness.account("org-b")).subscription_left_units == 6000 * SPU

    # This org keeps the 5,000 of the (now archived) price its subscription holds.
    await harness.deliver_all(fake.renew(subscription["id"]))
    account = await harness.account("org-a")
    assert account.subscription_price_id == seeded.individual["id"]
    assert account.subscription_allowance_units == 5000 * SPU

    # It cancels: the allowance is gone; purchased and granted credits stay.
    await harness.deliver_all(fake.cancel(subscription["id"]))
    account = await harness.account("org-a")
    assert (account.subscription_type, account.subscription_status) == ("free", "canceled")
    assert account.subscription_allowance_units == 0
    assert (account.purchased_credits_units, account.purchased_used_units) == (
        1000 * SPU,
        1000 * SPU,
    )
    assert account.granted_left_units == 100 * SPU
    balance = await client.get("/v1/balance", headers=auth)
    assert balance.json()["available_spus"] == "100"

    _, violations = await verify(harness.store)
    assert violations == []
