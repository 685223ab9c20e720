"""Properties of the waterfall: who pays for a debit, and how much a settlement may take."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.waterfall import BucketSplit, debt_payoff, payable_units, split_debit

units = st.integers(min_value=0, max_value=10**15)
signed_units = st.integers(min_value=-(10**15), max_value=10**15)


@given(units, signed_units, signed_units, signed_units)
def test_split_pays_every_unit_exactly_once(
    amount: int, subscription: int, purchased: int, granted: int
) -> None:
    split = split_debit(amount, subscription, purchased, granted)

    assert split.total_units == amount
    assert min(split.subscription_units, split.purchased_units, split.granted_units) >= 0
    assert split.debt_units >= 0


@given(units, signed_units, signed_units, signed_units)
def test_split_never_takes_more_than_a_bucket_holds(
    amount: int, subscription: int, purchased: int, granted: int
) -> None:
    split = split_debit(amount, subscription, purchased, granted)

    assert split.subscription_units <= max(subscription, 0)
    assert split.purchased_units <= max(purchased, 0)
    assert split.granted_units <= max(granted, 0)
    held = max(subscription, 0) + max(purchased, 0) + max(granted, 0)
    assert split.debt_units == max(amount - held, 0)


@given(units, signed_units, signed_units, signed_units)
def test_split_drains_subscription_then_purchased_then_granted(
    amount: int, subscription: int, purchased: int, granted: int
) -> None:
    split = split_debit(amount, subscription, purchased, granted)

    if split.purchased_units or split.granted_units or split.debt_units:
        assert split.subscription_units == max(subscription, 0)
    if split.granted_units or split.debt_units:
        assert split.purchased_units == max(purchased, 0)
    if split.debt_units:
        assert split.granted_units == max(granted, 0)


def test_split_example_crosses_all_three_buckets_into_debt() -> None:
    assert split_debit(100, 30, 40, 20) == BucketSplit(30, 40, 20, 10)
    assert split_debit(0, 30, 40, 20) == BucketSplit()


def test_negative_debit_is_refused() -> None:
    with pytest.raises(ValueError):
        split_debit(-1, 10, 10, 10)


@given(units, units, signed_units)
def test_settlement_pays_at_most_its_hold_plus_unreserved_credit(
    actual: int, hold: int, free: int
) -> None:
    payable = payable_units(actual, hold, free)

    assert 0 <= payable <= actual
    assert payable <= hold + max(free, 0)
    assert payable == actual or payable == hold + max(free, 0)


@given(units, units, units, units)
def test_settling_more_never_pays_less(actual: int, extra: int, hold: int, free: int) -> None:
    assert payable_units(actual + extra, hold, free) >= payable_units(actual, hold, free)


@given(signed_units, signed_units)
def test_a_credit_pays_debt_up_to_both_amounts(credit: int, debt: int) -> None:
    paid = debt_payoff(credit, debt)

    assert 0 <= paid <= max(credit, 0)
    assert paid <= max(debt, 0)
    assert paid == min(max(credit, 0), max(debt, 0))
