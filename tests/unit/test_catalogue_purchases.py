"""What a Checkout session bought, and the share of it each refund or dispute takes back."""

from hypothesis import given
from hypothesis import strategies as st

from ledger import UNITS_PER_SPU
from proxy.billing.catalogue.credits import (
    RefundAmount,
    dispute_share,
    purchased_units,
    refund_shares,
)
from tests.fakes.stripe_objects import line_item, price

SPU = UNITS_PER_SPU


def credit_item(quantity: int, *, product_id: str = "prod_1", **metadata: str) -> dict:
    sold = price(
        "price_credit",
        product_id=product_id,
        unit_amount=100,
        metadata={"price_type": "credit", **metadata},
        created=1,
        divide_by=100,
    )
    return line_item("li_1", price_obj=sold, quantity=quantity, amount_total=quantity)


def test_a_session_bought_its_credit_line_items_quantity() -> None:
    assert purchased_units([credit_item(1000)], "prod_1") == 1000 * SPU


def test_spus_per_unit_multiplies_the_quantity() -> None:
    assert purchased_units([credit_item(30, spus_per_unit="10")], "prod_1") == 300 * SPU


def test_line_items_of_other_products_or_plans_buy_no_credits() -> None:
    plan = price(
        "price_plan",
        product_id="prod_1",
        unit_amount=2000,
        created=1,
        interval="month",
        metadata={"price_type": "base", "tier": "team", "included_spus": "100"},
    )
    items = [
        credit_item(500, product_id="prod_other"),
        line_item("li_2", price_obj=plan, quantity=1, amount_total=2000),
    ]

    assert purchased_units(items, "prod_1") == 0


def test_partial_refunds_adding_up_to_the_charge_take_back_every_unit() -> None:
    refunds = [
        RefundAmount("re_1", 333, 1),
        RefundAmount("re_2", 333, 2),
        RefundAmount("re_3", 334, 3),
    ]

    shares = refund_shares(1000 * SPU, 1000, refunds)

    assert shares == [("re_1", 333 * SPU), ("re_2", 333 * SPU), ("re_3", 334 * SPU)]


def test_a_refund_of_a_discounted_charge_takes_back_its_proportion_of_the_credits() -> None:
    assert refund_shares(1000 * SPU, 800, [RefundAmount("re_1", 400, 1)]) == [("re_1", 500 * SPU)]


@given(
    purchased=st.integers(1, 10**12),
    charge=st.integers(1, 10**7),
    amounts=st.lists(st.integers(0, 10**7), max_size=8),
)
def test_refund_shares_sum_to_the_refunded_proportion_and_never_change_later(
    purchased: int, charge: int, amounts: list[int]
) -> None:
    refunds = [RefundAmount(f"re_{i}", amount, i) for i, amount in enumerate(amounts)]

    shares = refund_shares(purchased, charge, refunds)

    refunded = min(sum(amounts), charge)
    assert sum(units for _, units in shares) == purchased * refunded // charge
    assert all(units >= 0 for _, units in shares)
    for known in range(len(refunds)):
        assert refund_shares(purchased, charge, refunds[:known]) == shares[:known]


def test_a_dispute_takes_back_only_what_refunds_left() -> None:
    assert dispute_share(1000 * SPU, 1000, 1000, 300 * SPU) == 700 * SPU
    assert dispute_share(1000 * SPU, 1000, 500, 0) == 500 * SPU
    assert dispute_share(1000 * SPU, 1000, 1000, 1000 * SPU) == 0
