"""What a call cost the provider, exactly, in integer pico-USD.

Rates are USD per token with up to ~17 significant digits, so a call's cost
is rarely a whole number of any currency unit. It is summed in Decimal with a
context that traps any rounding, then rounded up once, at the end, to the
pico-USD (1e-12 USD): a call is never recorded as cheaper than it was.
"""

from decimal import ROUND_CEILING, Context, Decimal, Inexact, InvalidOperation, Overflow

from pricing.costmap import ModelRates
from pricing.token_counts import TokenCounts

PICO_USD_PER_USD = 10**12

EXACT = Context(prec=120, traps=[Inexact, InvalidOperation, Overflow])
"""Wide enough for bounded token counts times any realistic rate; a rounding raises instead."""


def cost_usd(counts: TokenCounts, rates: ModelRates) -> Decimal:
    """The exact provider cost of ``counts``, unrounded."""
    return EXACT.add(
        EXACT.add(
            EXACT.multiply(counts.input_tokens, rates.input_usd_per_token),
            EXACT.multiply(counts.output_tokens, rates.output_usd_per_token),
        ),
        EXACT.add(
            EXACT.multiply(
                counts.cache_creation_input_tokens, rates.cache_creation_input_usd_per_token
            ),
            EXACT.multiply(counts.cache_read_input_tokens, rates.cache_read_input_usd_per_token),
        ),
    )


def usd_to_pico_usd_ceil(amount_usd: Decimal) -> int:
    """Round an exact USD amount up to whole pico-USD."""
    return int(EXACT.multiply(amount_usd, PICO_USD_PER_USD).to_integral_value(ROUND_CEILING))


def cost_pico_usd(counts: TokenCounts, rates: ModelRates) -> int:
    """The provider cost of ``counts`` in pico-USD, rounded up only once, at the end."""
    return usd_to_pico_usd_ceil(cost_usd(counts, rates))
