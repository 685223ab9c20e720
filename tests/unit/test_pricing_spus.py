"""SPU units from provider cost: markup applied exactly, rounded up at the ledger unit."""

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.units import UNITS_PER_SPU
from pricing.spus import PricingPolicy, max_cost_for_units, units_for_cost

CENT_PER_SPU = PricingPolicy(markup=Decimal(0), usd_per_spu=Decimal("0.01"))


def test_a_cent_of_cost_at_a_cent_per_spu_is_one_spu() -> None:
    assert units_for_cost(10**10, CENT_PER_SPU) == UNITS_PER_SPU


def test_markup_is_added_on_top_of_cost() -> None:
    policy = PricingPolicy(markup=Decimal("0.25"), usd_per_spu=Decimal("0.01"))
    assert units_for_cost(10**10, policy) == 1_250_000


def test_units_round_up_at_the_unit_boundary() -> None:
    # One unit is 1e-8 USD = 10_000 pico-USD at a cent per SPU.
    assert units_for_cost(0, CENT_PER_SPU) == 0
    assert units_for_cost(1, CENT_PER_SPU) == 1
    assert units_for_cost(10_000, CENT_PER_SPU) == 1
    assert units_for_cost(10_001, CENT_PER_SPU) == 2
    assert units_for_cost(20_000, CENT_PER_SPU) == 2


def test_a_spu_price_with_no_finite_binary_form_is_still_exact() -> None:
    policy = PricingPolicy(markup=Decimal("0.1"), usd_per_spu=Decimal("0.03"))
    # One unit pays 0.03e-6 / 1.1 USD = 27_272.7… pico-USD.
    assert units_for_cost(27_272, policy) == 1
    assert units_for_cost(27_273, policy) == 2
    assert units_for_cost(300_000, policy) == 11  # exactly 11 units


@pytest.mark.parametrize(
    ("markup", "usd_per_spu", "error"),
    [
        (Decimal("-0.01"), Decimal("0.01"), ValueError),
        (Decimal(0), Decimal(0), ValueError),
        (Decimal(0), Decimal("-1"), ValueError),
        (Decimal("NaN"), Decimal("0.01"), ValueError),
        (Decimal(0), Decimal("Infinity"), ValueError),
        (0.2, Decimal("0.01"), TypeError),
    ],
)
def test_invalid_policies_are_refused(markup: object, usd_per_spu: object, error: type) -> None:
    with pytest.raises(error):
        PricingPolicy(markup=markup, usd_per_spu=usd_per_spu)  # type: ignore[arg-type]


@pytest.mark.parametrize("cost", [-1, 1.5, True])
def test_cost_must_be_a_non_negative_integer(cost: int) -> None:
    with pytest.raises(ValueError):
        units_for_cost(cost, CENT_PER_SPU)


policies = st.builds(
    PricingPolicy,
    markup=st.decimals(min_value=0, max_value=10, places=4),
    usd_per_spu=st.decimals(min_value=Decimal("0.000001"), max_value=100, places=6),
)
costs = st.integers(min_value=0, max_value=10**18)


def exact_units(cost_pico_usd: int, policy: PricingPolicy) -> Fraction:
    cost_usd = Fraction(cost_pico_usd, 10**12)
    return cost_usd * (1 + Fraction(policy.markup)) / Fraction(policy.usd_per_spu) * UNITS_PER_SPU


@given(policies, costs)
def test_units_are_never_below_the_exact_value_nor_a_unit_above(
    policy: PricingPolicy, cost: int
) -> None:
    exact = exact_units(cost, policy)
    units = units_for_cost(cost, policy)
    assert exact <= units < exact + 1
    assert units == math.ceil(exact)


@given(policies, costs, costs)
def test_units_are_monotone_in_cost(policy: PricingPolicy, cost_a: int, cost_b: int) -> None:
    low, high = sorted((cost_a, cost_b))
    assert units_for_cost(low, policy) <= units_for_cost(high, policy)


@given(policies, st.integers(min_value=-(10**9), max_value=10**12))
def test_max_cost_for_units_is_the_exact_inverse(policy: PricingPolicy, units: int) -> None:
    most = max_cost_for_units(units, policy)
    assert most < 0 or units_for_cost(most, policy) <= units
    assert most + 1 < 0 or units_for_cost(most + 1, policy) > units
