"""A Stripe subscription read as the ledger's plan: period from the item, allowance from the
price it holds, and only while paid up."""

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger import UNITS_PER_SPU
from proxy.billing.catalogue.plans import base_item, current_subscription, subscription_plan
from proxy.billing.catalogue.prices import CatalogueError
from tests.fakes.stripe_objects import price, subscription, subscription_item

SPU = UNITS_PER_SPU
AS_OF = datetime(2027, 1, 1, tzinfo=UTC)


def plan_price(price_id: str = "price_ind", *, product_id: str = "prod_1", **kw: Any) -> dict:
    return price(
        price_id,
        product_id=product_id,
        unit_amount=2000,
        metadata={"price_type": "base", "tier": "individual", "included_spus": "5000"},
        created=1,
        interval="month",
        **kw,
    )


def sub(
    subscription_id: str = "sub_1",
    *,
    status: str = "active",
    created: int = 10,
    price_obj: dict | None = None,
) -> dict:
    item = subscription_item(
        f"si_{subscription_id}",
        price_obj=price_obj or plan_price(),
        subscription_id=subscription_id,
        period_start=1_800_000_000,
        period_end=1_802_592_000,
    )
    return subscription(
        subscription_id, customer_id="cus_1", item=item, created=created, metadata={}, status=status
    )


def test_the_plan_comes_from_the_item_holding_the_base_price() -> None:
    plan = subscription_plan(sub(), "prod_1", AS_OF)

    assert (plan.tier, plan.allowance_units, plan.status) == ("individual", 5000 * SPU, "active")
    assert plan.period_start == datetime.fromtimestamp(1_800_000_000, UTC)
    assert plan.period_end == datetime.fromtimestamp(1_802_592_000, UTC)
    assert (plan.price_id, plan.item_id, plan.as_of) == ("price_ind", "si_sub_1", AS_OF)


def test_an_archived_price_still_grants_its_own_allowance() -> None:
    plan = subscription_plan(sub(price_obj=plan_price(active=False)), "prod_1", AS_OF)

    assert plan.allowance_units == 5000 * SPU


@pytest.mark.parametrize("status", ["past_due", "unpaid", "incomplete", "paused"])
def test_a_plan_that_is_not_paid_up_carries_no_allowance(status: str) -> None:
    plan = subscription_plan(sub(status=status), "prod_1", AS_OF)

    assert (plan.status, plan.allowance_units) == (status, 0)


def test_a_trial_carries_the_allowance() -> None:
    assert subscription_plan(sub(status="trialing"), "prod_1", AS_OF).allowance_units == 5000 * SPU


def test_a_subscription_shaped_before_basil_is_refused_with_the_reason() -> None:
    old_shape = sub()
    for item in old_shape["items"]["data"]:
        del item["current_period_start"]
        del item["current_period_end"]
    old_shape["current_period_start"] = 1_800_000_000

    with pytest.raises(CatalogueError, match=r"no current_period_start.*2025-03-31\.basil"):
        subscription_plan(old_shape, "prod_1", AS_OF)


def test_items_of_other_products_are_not_ours() -> None:
    foreign = sub(price_obj=plan_price(product_id="prod_other"))

    assert base_item(foreign, "prod_1") is None
    with pytest.raises(CatalogueError, match="holds no base price of prod_1"):
        subscription_plan(foreign, "prod_1", AS_OF)


def test_the_deciding_subscription_is_live_ours_best_status_then_newest() -> None:
    canceled = sub("sub_canceled", status="canceled", created=99)
    past_due = sub("sub_past_due", status="past_due", created=50)
    active_old = sub("sub_active_old", created=1)
    active_new = sub("sub_active_new", created=2)
    foreign = sub("sub_foreign", created=100, price_obj=plan_price(product_id="prod_other"))

    chosen = current_subscription([canceled, past_due, active_old, active_new, foreign], "prod_1")

    assert chosen is not None and chosen["id"] == "sub_active_new"
    assert current_subscription([canceled, foreign], "prod_1") is None
    assert current_subscription([canceled, past_due], "prod_1") == past_due
