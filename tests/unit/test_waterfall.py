"""Properties of the waterfall: who pays for a debit, and how much a settlement may take."""

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.waterfall import BucketSplit, debt_payoff, payable_units, settlement_split, split_debit

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


class Left(NamedTuple):
    """What each bucket still holds, as an account or a backend's read of one reports it."""

    subscription_left_units: int = 0
    purchased_left_units: int = 0
    granted_left_units: int = 0


def test_a_settlement_within_its_hold_is_paid_by_the_buckets_in_order() -> None:
    split = settlement_split(25, reserved_units=30, held_units=30, buckets=Left(10, 10, 10))

    assert (split.subscription_units, split.purchased_units, split.granted_units) == (10, 10, 5)
    assert split.debt_units == 0


def test_an_overrun_uses_only_credit_no_other_hold_reserved() -> None:
    # This hold reserves 30, another one 50: 20 are free, the rest is debt.
    split = settlement_split(
        60, reserved_units=30, held_units=80, buckets=Left(granted_left_units=100)
    )

    assert (split.granted_units, split.debt_units) == (50, 10)


def test_an_expired_hold_reserves_nothing() -> None:
    split = settlement_split(
        60, reserved_units=0, held_units=90, buckets=Left(granted_left_units=100)
    )

    assert (split.granted_units, split.debt_units) == (10, 50)


@given(
    actual=st.integers(0, 10**12),
    reserved=st.integers(0, 10**12),
    others=st.integers(0, 10**12),
    lefts=st.tuples(*(st.integers(0, 10**12) for _ in range(3))),
)
def test_a_settlement_always_charges_exactly_the_actual_amount(
    actual: int, reserved: int, others: int, lefts: tuple[int, int, int]
) -> None:
    split = settlement_split(actual, reserved, reserved + others, Left(*lefts))

    assert split.total_units == actual
    assert min(split.subscription_units, split.purchased_units, split.granted_units) >= 0
    assert split.subscription_units <= lefts[0]
    assert split.purchased_units <= lefts[1]
    assert split.granted_units <= lefts[2]
    assert split.paid_units <= reserved + max(sum(lefts) - reserved - others, 0)
