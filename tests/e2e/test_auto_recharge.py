"""Auto-recharge through the stripe library against the fake Stripe: one PaymentIntent per
crossing however many settlements race, credited only by payment_intent.succeeded and only
once, never past the monthly cap; a decline or requires_action fails it with an alert."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ledger import UNITS_PER_SPU, UsageDetails
from ledger.outbox import AutoRecharge, OutboxState, OutboxTopic, RechargeState
from proxy.billing.webhooks.outcomes import Outcome
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_harness import BillingHarness, SeededCatalogue, running_gateway

SPU = UNITS_PER_SPU
ORG = "org-recharged"
ADMIN_TOKEN = "admin-secret-for-recharge"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
DETAILS = UsageDetails(model="spu-demo", provider="demo")


@pytest.fixture
async def harness(
    fake: FakeStripe, seeded: SeededCatalogue, tmp_path: Path
) -> AsyncIterator[BillingHarness]:
    """Workers that only run when the test drains them (a long poll)."""
    async with running_gateway(
        fake, tmp_path / "ledger.db", admin_token=ADMIN_TOKEN, outbox_poll_s=3600.0
    ) as running:
        yield running


async def _recharged_org(
    harness: BillingHarness, *, amount_spus: int = 500, cap_spus: int = 5000
) -> str:
    """An org with 100 SPUs, a saved card and auto-recharge below 50 SPUs, set by the admin API."""
    auth = await harness.new_org(ORG)
    await harness.client.post("/billing/portal", json={}, headers=auth)
    account = await harness.account(ORG)
    assert account.stripe_customer_id is not None
    harness.fake.save_card(account.stripe_customer_id)
    answer = await harness.client.put(
        f"/admin/organizations/{ORG}/auto_recharge",
        json={
            "threshold_spus": "50",
            "amount_spus": str(amount_spus),
            "monthly_cap_spus": str(cap_spus),
        },
        headers=ADMIN,
    )
    assert answer.status_code == 200, answer.text
    return account.stripe_customer_id


async def _spend(harness: BillingHarness, spus: int, request_id: str) -> None:
    await harness.store.hold(ORG, spus * SPU, request_id, ttl_s=60)
    await harness.store.settle(request_id, spus * SPU, DETAILS)


async def _start_recharges(harness: BillingHarness) -> int:
    return await harness.billing.recharges.drain_once()


async def test_twenty_concurrent_settlements_across_the_threshold_make_one_payment_intent(
    harness: BillingHarness,
) -> None:
    customer_id = await _recharged_org(harness)
    for n in range(20):
        await harness.store.hold(ORG, 4 * SPU, f"r{n}", ttl_s=60)

    await asyncio.gather(*(harness.store.settle(f"r{n}", 4 * SPU, DETAILS) for n in range(20)))
    assert await asyncio.gather(_start_recharges(harness), _start_recharges(harness)) in (
        [1, 0],
        [0, 1],
    )

    [intent] = harness.fake.intents_for("auto_recharge")
    assert (intent["customer"], intent["amount"], intent["status"]) == (
        customer_id,
        500,
        "succeeded",
    )
    [created] = harness.fake.requests_to("POST", "/v1/payment_intents")
    assert created.params["off_session"] == "true" and created.params["confirm"] == "true"
    [recharge] = await harness.store.recharges(ORG)
    assert created.headers["idempotency-key"] == f"spu-{recharge.recharge_id}"
    assert recharge.payment_intent_id == intent["id"]
    assert (await harness.account(ORG)).purchased_credits_units == 0


async def test_a_retried_start_reuses_the_payment_intent_and_a_replayed_success_credits_once(
    harness: BillingHarness,
) -> None:
    await _recharged_org(harness)
    await _spend(harness, 60, "r1")
    [event] = await harness.store.claim_outbox(OutboxTopic.RECHARGE, limit=10, lease_s=60)
    starter = harness.billing.recharges._handle
    await starter(event)
    await starter(event)
    [intent] = harness.fake.intents_for("auto_recharge")

    [succeeded] = harness.fake.intent_succeeded(intent["id"])
    first = await harness.deliver(succeeded)
    again = await harness.deliver(succeeded)
    resent = await harness.deliver(harness.fake.event("payment_intent.succeeded", intent))

    assert first.json()["outcome"] == Outcome.RECHARGE_CREDITED
    assert again.json()["outcome"] == Outcome.DUPLICATE
    assert resent.json()["outcome"] == Outcome.ALREADY_CREDITED
    account = await harness.account(ORG)
    assert account.purchased_credits_units == 500 * SPU
    [recharge] = await harness.store.recharges(ORG)
    assert recharge.state is RechargeState.SUCCEEDED
    metrics = (await harness.client.get("/metrics")).text
    assert 'spu_auto_recharges_total{outcome="succeeded"} 1.0' in metrics


async def test_the_monthly_cap_holds_across_three_crossings(harness: BillingHarness) -> None:
    await _recharged_org(harness, amount_spus=100, cap_spus=200)
    for crossing in range(3):
        await _spend(harness, 60 if crossing == 0 else 100, f"r{crossing}")
        await _start_recharges(harness)
        for intent in harness.fake.intents_for("auto_recharge"):
            if intent["status"] == "succeeded" and not intent.get("delivered"):
                intent["delivered"] = True
                await harness.deliver_all(harness.fake.intent_succeeded(intent["id"]))

    assert len(harness.fake.intents_for("auto_recharge")) == 2
    assert (await harness.account(ORG)).purchased_credits_units == 200 * SPU
    states = sorted((r.state.value, r.reason) for r in await harness.store.recharges(ORG))
    assert states == [
        ("failed", "monthly_cap_reached"),
        ("succeeded", None),
        ("succeeded", None),
    ]


@pytest.mark.parametrize("outcome", ["declined", "requires_action"])
async def test_a_decline_or_requires_action_fails_the_recharge_with_an_alert(
    harness: BillingHarness, outcome: str
) -> None:
    await _recharged_org(harness)
    await harness.store.set_alerts(ORG, "https://hooks.example.test/spu", [], "whsec_test")
    harness.fake.card_outcome = outcome

    await _spend(harness, 60, "r1")
    await _start_recharges(harness)

    [intent] = harness.fake.intents_for("auto_recharge")
    [recharge] = await harness.store.recharges(ORG)
    assert recharge.state is RechargeState.FAILED and recharge.payment_intent_id == intent["id"]
    assert recharge.reason == (
        "card_declined: insufficient_funds" if outcome == "declined" else "requires_action"
    )
    if outcome == "requires_action":
        assert intent["status"] == "canceled"
    [alert] = await harness.store.alert_events(ORG, state=OutboxState.PENDING)
    assert (alert.kind.value, alert.reason) == ("auto_recharge.failed", recharge.reason)
    assert (await harness.account(ORG)).purchased_credits_units == 0

    await _spend(harness, 10, "r2")
    assert await _start_recharges(harness) == 0, "the next attempt waits for the next crossing"


async def test_auto_recharge_needs_stripe_and_a_saving_checkout_sets_the_default_card(
    harness: BillingHarness,
) -> None:
    await _recharged_org(harness)
    auth = await harness.new_org("org-buyer")
    await harness.store.set_auto_recharge("org-buyer", AutoRecharge(SPU, SPU, SPU))

    opened = await harness.client.post(
        "/billing/checkout/credits", json={"spus": 1000}, headers=auth
    )
    session_id = opened.json()["id"]
    assert opened.json()["save_card"] is True
    [created] = harness.fake.requests_to("POST", "/v1/checkout/sessions")
    assert created.params["payment_intent_data[setup_future_usage]"] == "off_session"
    await harness.deliver_all(harness.fake.complete_checkout(session_id))

    customer = harness.fake.customers[harness.fake.sessions[session_id]["customer"]]
    intent = harness.fake.payment_intents[harness.fake.sessions[session_id]["payment_intent"]]
    assert customer["invoice_settings"]["default_payment_method"] == intent["payment_method"]
    shown = await harness.client.get(f"/admin/organizations/{ORG}/auto_recharge", headers=ADMIN)
    assert shown.json()["threshold_spus"] == "50"
    removed = await harness.client.delete(
        f"/admin/organizations/{ORG}/auto_recharge", headers=ADMIN
    )
    assert removed.status_code == 200
    assert await harness.store.auto_recharge(ORG) is None
