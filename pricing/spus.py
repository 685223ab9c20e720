"""SPUs from provider cost: the markup and the SPU's price, applied exactly.

``units = cost_usd × (1 + markup) / usd_per_spu × UNITS_PER_SPU``, rounded up
at the ledger unit. Both policy numbers are exact decimals, so the whole
factor is one fraction of integers, reduced once when the policy is built;
pricing a call is then one integer multiplication and one ceiling division.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from math import gcd

from ledger.units import UNITS_PER_SPU
from pricing.cost import PICO_USD_PER_USD


@dataclass(frozen=True, slots=True)
class PricingPolicy:
    """How provider cost becomes SPUs; both numbers are configuration (or Stripe metadata)."""

    markup: Decimal
    """Fraction added on top of provider cost: ``Decimal("0.25")`` charges cost + 25 %."""
    usd_per_spu: Decimal
    """What one SPU is worth in USD of provider cost after markup."""
    _units_numerator: int = field(init=False, repr=False, compare=False)
    _pico_usd_denominator: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, value in (("markup", self.markup), ("usd_per_spu", self.usd_per_spu)):
            if not isinstance(value, Decimal):
                raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
            if not value.is_finite():
                raise ValueError(f"{name} must be finite, not {value}")
        if self.markup < 0:
            raise ValueError(f"markup must be zero or more, not {self.markup}")
        if self.usd_per_spu <= 0:
            raise ValueError(f"usd_per_spu must be positive, not {self.usd_per_spu}")
        factor_num, factor_den = (1 + self.markup).as_integer_ratio()
        price_num, price_den = self.usd_per_spu.as_integer_ratio()
        numerator = factor_num * price_den * UNITS_PER_SPU
        denominator = factor_den * price_num * PICO_USD_PER_USD
        common = gcd(numerator, denominator)
        object.__setattr__(self, "_units_numerator", numerator // common)
        object.__setattr__(self, "_pico_usd_denominator", denominator // common)


def units_for_cost(cost_pico_usd: int, policy: PricingPolicy) -> int:
    """Ledger units to charge for a provider cost, rounded up at the unit."""
    if isinstance(cost_pico_usd, bool) or not isinstance(cost_pico_usd, int) or cost_pico_usd < 0:
        raise ValueError(f"cost_pico_usd must be a non-negative int, not {cost_pico_usd!r}")
    return -(-cost_pico_usd * policy._units_numerator // policy._pico_usd_denominator)


def max_cost_for_units(amount_units: int, policy: PricingPolicy) -> int:
    """The largest provider cost, in pico-USD, that ``amount_units`` can pay for.

    The exact inverse of ``units_for_cost``: ``units_for_cost(c) <= amount_units``
    holds precisely when ``c <= max_cost_for_units(amount_units)``; a negative amount
    (an org in debt) pays for nothing, and the result is then negative.
    """
    return amount_units * policy._pico_usd_denominator // policy._units_numerator
