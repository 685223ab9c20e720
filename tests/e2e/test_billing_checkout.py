"""Checkout and Billing Portal routes: what the gateway asks Stripe for, exactly."""

import asyncio
from pathlib import Path

import pytest

from proxy.billing.client import STRIPE_API_VERSION
from proxy.billing.customers import customer_idempotency_key
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_harness import (
    PUBLIC_URL,
    BillingHarness,
    SeededCatalogue,
    running_gateway,
)


async def test_credit_checkout_sells_the_credit_price_as_a_line_item_for_the_callers_org(
    harness: BillingHarness, seeded: SeededCatalogue
) -> None:
    auth = await harness.new_org("org-a")

    response = await harness.client.post(
        "/billing/checkout/credits", json={"spus": 1000}, headers=auth
    )

    assert response.status_code == 200, response.text
    body = response.json()
    [created] = harness.fake.requests_to("POST", "/v1/checkout/sessions")
    customer_id = (await harness.account("org-a")).stripe_customer_id
    assert customer_id is not None
    assert created.params == {
        "mode": "payment",
        "customer": customer_id,
        "client_reference_id": "org-a",
        "line_items[0][price]": seeded.credit["id"],
        "line_items[0][quantity]": "1000",
        "metadata[org_id]": "org-a",
        "metadata[purchase]": "credits",
        "payment_intent_data[metadata][org_id]": "org-a",
        "success_url": f"{PUBLIC_URL}/?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{PUBLIC_URL}/?checkout=canceled",
    }
    session = harness.fake.sessions[body["id"]]
    assert body == {
        "object": "checkout.session",
        "id": session["id"],
        "url": session["url"],
        "save_card": False,
        "spus": "1000",
        "amount": 1000,
        "currency": "usd",
    }


async def test_every_stripe_request_carries_the_pinned_api_version(
    harness: BillingHarness,
) -> None:
    auth = await harness.new_org("org-a")
    await harness.client.post("/billing/checkout/credits", json={"spus": 500}, headers=auth)

    versions = {recorded.headers.get("stripe-version") for recorded in harness.fake.requests}
    assert versions == {STRIPE_API_VERSION}


async def test_concurrent_first_purchases_create_one_stripe_customer(
    harness: BillingHarness,
) -> None:
    auth = await harness.new_org("org-a")

    responses = await asyncio.gather(
        *(
            harness.client.post("/billing/checkout/credits", json={"spus": 100}, headers=auth)
            for _ in range(5)
        )
    )

    assert [r.status_code for r in responses] == [200] * 5
    assert len(harness.fake.customers) == 1
    [customer_id] = harness.fake.customers
    assert (await harness.account("org-a")).stripe_customer_id == customer_id
    sessions = harness.fake.sessions.values()
    assert {s["customer"] for s in sessions} == {customer_id}
    keys = {r.headers["idempotency-key"] for r in harness.fake.requests_to("POST", "/v1/customers")}
    assert keys == {customer_idempotency_key("org-a")}
    assert harness.fake.customers[customer_id]["metadata"] == {"org_id": "org-a"}


async def test_a_known_customer_is_reused_without_asking_stripe_again(
    harness: BillingHarness,
) -> None:
    auth = await harness.new_org("org-a")
    for _ in range(3):
        await harness.client.post("/billing/checkout/credits", json={"spus": 100}, headers=auth)

    assert len(harness.fake.requests_to("POST", "/v1/customers")) == 1


@pytest.mark.parametrize(
    ("spus", "message"),
    [
        (50, "between 100 and 100000 SPUs"),
        (100_100, "between 100 and 100000 SPUs"),
        (150, "multiples of 100"),
    ],
)
async def test_purchases_outside_the_credit_price_bounds_are_refused_before_stripe(
    harness: BillingHarness, spus: int, message: str
) -> None:
    auth = await harness.new_org("org-a")

    response = await harness.client.post(
        "/billing/checkout/credits", json={"spus": spus}, headers=auth
    )

    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert response.json()["error"]["param"] == "spus"
    assert harness.fake.requests_to("POST", "/v1/checkout/sessions") == []


async def test_subscription_checkout_sells_the_tiers_newest_active_price(
    harness: BillingHarness, seeded: SeededCatalogue
) -> None:
    auth = await harness.new_org("org-a")

    response = await harness.client.post(
        "/billing/checkout/subscription", json={"tier": "Individual"}, headers=auth
    )

    assert response.status_code == 200, response.text
    [created] = harness.fake.requests_to("POST", "/v1/checkout/sessions")
    customer_id = (await harness.account("org-a")).stripe_customer_id
    assert created.params == {
        "mode": "subscription",
        "customer": customer_id,
        "client_reference_id": "org-a",
        "line_items[0][price]": seeded.individual["id"],
        "line_items[0][quantity]": "1",
        "metadata[org_id]": "org-a",
        "metadata[purchase]": "subscription",
        "subscription_data[metadata][org_id]": "org-a",
        "success_url": f"{PUBLIC_URL}/?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{PUBLIC_URL}/?checkout=canceled",
    }
    body = response.json()
    assert (body["tier"], body["included_spus"], body["amount"], body["interval"]) == (
        "individual",
        "5000",
        2000,
        "month",
    )


async def test_an_unknown_tier_is_refused_with_the_tiers_on_sale(harness: BillingHarness) -> None:
    auth = await harness.new_org("org-a")

    response = await harness.client.post(
        "/billing/checkout/subscription", json={"tier": "gold"}, headers=auth
    )

    assert response.status_code == 400
    assert "individual, team" in response.json()["error"]["message"]


async def test_an_org_with_a_live_plan_is_sent_to_the_portal_instead_of_a_second_plan(
    harness: BillingHarness,
) -> None:
    auth = await harness.new_org("org-a")
    first = await harness.client.post(
        "/billing/checkout/subscription", json={"tier": "individual"}, headers=auth
    )
    await harness.deliver_all(harness.fake.complete_checkout(first.json()["id"]))

    second = await harness.client.post(
        "/billing/checkout/subscription", json={"tier": "team"}, headers=auth
    )

    assert second.status_code == 409
    assert second.json()["error"]["code"] == "already_subscribed"


async def test_portal_returns_a_billing_portal_url_for_the_orgs_customer(
    harness: BillingHarness,
) -> None:
    auth = await harness.new_org("org-a")

    response = await harness.client.post(
        "/billing/portal", json={"return_url": f"{PUBLIC_URL}/usage"}, headers=auth
    )

    assert response.status_code == 200, response.text
    [portal] = harness.fake.portal_sessions.values()
    assert response.json()["url"] == portal["url"]
    [created] = harness.fake.requests_to("POST", "/v1/billing_portal/sessions")
    customer_id = (await harness.account("org-a")).stripe_customer_id
    assert created.params == {"customer": customer_id, "return_url": f"{PUBLIC_URL}/usage"}


async def test_return_urls_off_the_gateway_are_refused(harness: BillingHarness) -> None:
    auth = await harness.new_org("org-a")

    response = await harness.client.post(
        "/billing/checkout/credits",
        json={"spus": 100, "success_url": "https://evil.example/phish"},
        headers=auth,
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "success_url"


async def test_billing_routes_need_the_orgs_token(harness: BillingHarness) -> None:
    response = await harness.client.post("/billing/checkout/credits", json={"spus": 100})

    assert response.status_code == 401
    assert [r for r in harness.fake.requests if r.method == "POST"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/billing/checkout/credits",
        "/billing/checkout/subscription",
        "/billing/portal",
        "/billing/webhook",
    ],
)
async def test_without_a_stripe_key_every_billing_route_answers_503_in_openai_shape(
    fake: FakeStripe, tmp_path: Path, path: str
) -> None:
    async with running_gateway(fake, tmp_path / "ledger.db", stripe_secret_key=None) as harness:
        response = await harness.client.post(path, json={"spus": 100})
        balance = await harness.client.get("/v1/balance", headers=await harness.new_org("org-a"))

    assert response.status_code == 503
    assert response.headers["retry-after"] == "3600"
    error = response.json()["error"]
    assert error["code"] == "billing_not_configured"
    assert error["type"] == "api_error"
    assert "STRIPE_SECRET_KEY" in error["message"]
    assert balance.status_code == 200
    assert fake.requests == []
