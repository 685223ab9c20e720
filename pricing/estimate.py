"""The worst case of a call before it runs, and the most output a balance affords.

The hold placed before forwarding must cover whatever the call can cost, so
every prompt token is priced at the dearest input rate that could apply and
the output at its full ``max_tokens``.
"""

from decimal import Decimal

from pricing.cost import EXACT, PICO_USD_PER_USD, usd_to_pico_usd_ceil
from pricing.costmap import ModelRates
from pricing.spus import PricingPolicy, max_cost_for_units, units_for_cost
from pricing.token_counts import MAX_TOKEN_COUNT


def worst_case_input_rate(rates: ModelRates) -> Decimal:
    """The dearest price a prompt token can have.

    Usually the uncached rate, or the cache-write rate where that is higher
    (the client may ask for cache writes); a cache read is included too in
    case an override makes it the dearest.
    """
    return max(
        rates.input_usd_per_token,
        rates.cache_creation_input_usd_per_token,
        rates.cache_read_input_usd_per_token,
    )


def _worst_case_cost_usd(prompt_tokens: int, max_output_tokens: int, rates: ModelRates) -> Decimal:
    """Every prompt token at the dearest input rate, every output token at the output rate."""
    return EXACT.add(
        EXACT.multiply(prompt_tokens, worst_case_input_rate(rates)),
        EXACT.multiply(max_output_tokens, rates.output_usd_per_token),
    )


def worst_case_cost_pico_usd(prompt_tokens: int, max_output_tokens: int, rates: ModelRates) -> int:
    """The most the provider can charge for the call, in pico-USD, rounded up."""
    return usd_to_pico_usd_ceil(_worst_case_cost_usd(prompt_tokens, max_output_tokens, rates))


def worst_case_units(
    prompt_tokens: int, max_output_tokens: int, rates: ModelRates, policy: PricingPolicy
) -> int:
    """The most the call can cost in ledger units: the amount to hold."""
    return units_for_cost(worst_case_cost_pico_usd(prompt_tokens, max_output_tokens, rates), policy)


def affordable_max_tokens(
    available_units: int,
    prompt_tokens: int,
    rates: ModelRates,
    policy: PricingPolicy,
    *,
    limit_tokens: int = MAX_TOKEN_COUNT,
) -> int:
    """The largest ``max_tokens`` (at most ``limit_tokens``) whose worst case fits the balance.

    0 when even the prompt alone is unaffordable (callers tell this apart from
    "prompt affordable, no room for output" with ``worst_case_units(prompt, 0)``).
    Solved in closed form with integers, not searched:
    ``ceil(c) <= budget`` for an integer budget exactly when ``c <= budget``.
    """
    if not 0 <= limit_tokens <= MAX_TOKEN_COUNT:
        raise ValueError(f"limit_tokens must be between 0 and {MAX_TOKEN_COUNT}")
    budget_pico_usd = max_cost_for_units(available_units, policy)
    prompt_pico_usd = EXACT.multiply(
        _worst_case_cost_usd(prompt_tokens, 0, rates), PICO_USD_PER_USD
    )
    if prompt_pico_usd > budget_pico_usd:
        return 0
    output_pico_usd_per_token = EXACT.multiply(rates.output_usd_per_token, PICO_USD_PER_USD)
    if output_pico_usd_per_token == 0:
        return limit_tokens
    room_num, room_den = EXACT.subtract(budget_pico_usd, prompt_pico_usd).as_integer_ratio()
    rate_num, rate_den = output_pico_usd_per_token.as_integer_ratio()
    affordable = min(room_num * rate_den // (room_den * rate_num), limit_tokens)
    assert worst_case_units(prompt_tokens, affordable, rates, policy) <= available_units
    assert affordable == limit_tokens or (
        worst_case_units(prompt_tokens, affordable + 1, rates, policy) > available_units
    )
    return affordable
