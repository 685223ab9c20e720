"""The ledger unit: exact conversions between SPUs and integer units."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.units import UNITS_PER_SPU, format_spus, spus_to_units, units_to_spus


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_units_survive_a_round_trip_through_spus(units: int) -> None:
    assert spus_to_units(units_to_spus(units)) == units
    assert spus_to_units(format_spus(units)) == units


def test_a_thousandth_of_an_spu_is_exact() -> None:
    assert spus_to_units("0.001") == 1_000
    assert spus_to_units(Decimal("2.5")) == 5 * UNITS_PER_SPU // 2
    assert spus_to_units(100) == 100 * UNITS_PER_SPU


def test_amounts_finer_than_a_unit_are_refused() -> None:
    with pytest.raises(ValueError):
        spus_to_units("0.0000001")


def test_display_trims_zeros_and_never_uses_exponents() -> None:
    assert format_spus(100 * UNITS_PER_SPU) == "100"
    assert format_spus(1_500_000) == "1.5"
    assert format_spus(1) == "0.000001"
    assert format_spus(0) == "0"
    assert format_spus(-250_000) == "-0.25"
