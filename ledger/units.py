"""The ledger's money unit.

Balances are integers of a fixed minor unit so that a call costing a
thousandth of an SPU is recorded exactly and every sum reconciles; ``Decimal``
appears only here, at the display edge.
"""

from decimal import Decimal

UNITS_PER_SPU = 1_000_000
"""One SPU is a million ledger units (micro-SPUs)."""


def spus_to_units(spus: int | Decimal | str) -> int:
    """Convert a whole or decimal SPU amount to units, refusing sub-unit precision."""
    exact = Decimal(spus) * UNITS_PER_SPU
    if exact != exact.to_integral_value():
        raise ValueError(f"{spus} SPU is finer than the ledger's unit (1e-6 SPU)")
    return int(exact)


def units_to_spus(units: int) -> Decimal:
    """Exact SPU value of an amount of units, for display and APIs."""
    return Decimal(units) / UNITS_PER_SPU


def format_spus(units: int) -> str:
    """Human display: trailing zeros trimmed, never scientific notation."""
    text = f"{units_to_spus(units):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
