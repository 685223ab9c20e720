"""The catalogue as the running gateway loads it: every page, its issues, its pricing policy."""

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from pricing import PricingPolicy
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_harness import PRODUCT_TAG, running_gateway, seed_catalogue


async def test_every_page_of_prices_is_read_archived_ones_included(tmp_path: Path) -> None:
    fake = FakeStripe()
    seeded = seed_catalogue(fake)
    for included in range(205):
        fake.add_price(
            seeded.product["id"],
            unit_amount=1000 + included,
            interval="month",
            metadata={"price_type": "base", "tier": "individual", "included_spus": str(included)},
            active=False,
        )

    async with running_gateway(fake, tmp_path / "ledger.db") as harness:
        catalogue = harness.billing.catalogue.current

    assert catalogue is not None
    assert len(catalogue.plans) == 207
    assert catalogue.issues == ()
    pages = fake.requests_to("GET", "/v1/prices")
    assert len(pages) == 3
    assert {page.params["limit"] for page in pages} == {"100"}
    assert [("starting_after" in page.params) for page in pages] == [False, True, True]


async def test_misconfigured_metadata_is_reported_at_start_up_and_the_gateway_still_serves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeStripe()
    product = fake.add_product({"product": PRODUCT_TAG})
    older = fake.add_price(
        product["id"],
        unit_amount=2000,
        interval="month",
        metadata={"price_type": "base", "tier": "individual", "included_spus": "5000"},
    )
    newer = fake.add_price(
        product["id"],
        unit_amount=2000,
        interval="month",
        metadata={"price_type": "base", "tier": "individual", "included_spus": "6000"},
    )
    broken = fake.add_price(
        product["id"],
        unit_amount=10000,
        interval="month",
        metadata={"price_type": "base", "tier": "team", "included_spus": "lots"},
    )

    with caplog.at_level(logging.ERROR, logger="spu.billing.catalogue"):
        async with running_gateway(fake, tmp_path / "ledger.db") as harness:
            auth = await harness.new_org("org-a")
            balance = await harness.client.get("/v1/balance", headers=auth)
            team = await harness.client.post(
                "/billing/checkout/subscription", json={"tier": "team"}, headers=auth
            )
            individual = await harness.client.post(
                "/billing/checkout/subscription", json={"tier": "individual"}, headers=auth
            )
            credits = await harness.client.post(
                "/billing/checkout/credits", json={"spus": 100}, headers=auth
            )

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert f"price {broken['id']}: metadata included_spus='lots' is not a number" in logged
    assert f"tier 'individual' has 2 active prices ({older['id']}, {newer['id']})" in logged
    assert "no active price_type='credit' price" in logged
    assert balance.status_code == 200
    assert team.status_code == 400
    assert individual.json()["included_spus"] == "6000"
    assert credits.status_code == 503
    assert credits.json()["error"]["code"] == "catalogue_incomplete"
    # Mended in Stripe, the catalogue is read again at the next scheduled refresh.
    assert credits.headers["retry-after"] == "300"


async def test_product_metadata_reprices_calls_and_removing_it_restores_the_configuration(
    tmp_path: Path,
) -> None:
    fake = FakeStripe()
    seeded = seed_catalogue(fake, product_metadata={"markup": "0.5", "usd_per_spu": "0.02"})

    async with running_gateway(fake, tmp_path / "ledger.db", markup="0.25") as harness:
        from_stripe = harness.gateway.meter.policy
        product = fake.products[seeded.product["id"]]
        product["metadata"] = {"product": PRODUCT_TAG}
        await harness.deliver_all([fake.event("product.updated", product)])
        restored = harness.gateway.meter.policy

    assert from_stripe == PricingPolicy(markup=Decimal("0.5"), usd_per_spu=Decimal("0.02"))
    assert restored == PricingPolicy(markup=Decimal("0.25"), usd_per_spu=Decimal("0.01"))


async def test_a_catalogue_stripe_could_not_serve_at_start_up_loads_on_first_use(
    tmp_path: Path,
) -> None:
    fake = FakeStripe()
    seed_catalogue(fake)
    fake.fail_once("GET", "/v1/products")

    async with running_gateway(fake, tmp_path / "ledger.db") as harness:
        before = harness.billing.catalogue.current
        auth = await harness.new_org("org-a")
        response = await harness.client.post(
            "/billing/checkout/credits", json={"spus": 100}, headers=auth
        )

    assert before is None
    assert response.status_code == 200, response.text


async def test_without_a_tagged_product_checkout_explains_what_is_missing(tmp_path: Path) -> None:
    fake = FakeStripe()
    fake.add_product({"product": "someone_else"})

    async with running_gateway(fake, tmp_path / "ledger.db") as harness:
        auth = await harness.new_org("org-a")
        response = await harness.client.post(
            "/billing/checkout/subscription", json={"tier": "individual"}, headers=auth
        )

    assert response.status_code == 503
    assert f"metadata product='{PRODUCT_TAG}'" in response.json()["error"]["message"]
