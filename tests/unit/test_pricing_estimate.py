"""The worst case held before a call, and the largest max_tokens a balance affords."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from pricing.cost import cost_pico_usd
from pricing.costmap import ModelRates, resolve_rates
from pricing.estimate import (
    affordable_max_tokens,
    worst_case_cost_pico_usd,
    worst_case_input_rate,
    worst_case_units,
)
from pricing.spus import PricingPolicy, units_for_cost
from pricing.token_counts import MAX_TOKEN_COUNT, TokenCounts

POLICY = PricingPolicy(markup=Decimal("0.2"), usd_per_spu=Decimal("0.01"))


def test_prompt_is_priced_at_the_cache_write_rate_when_that_is_dearer() -> None:
    rates = resolve_rates("claude-sonnet-4-5")
    assert worst_case_input_rate(rates) == Decimal("0.00000375")
    # 1000 × 3.75e-6 + 100 × 1.5e-5 = 0.00525 USD
    assert worst_case_cost_pico_usd(1_000, 100, rates) == 5_250_000_000


def test_prompt_is_priced_at_the_uncached_rate_when_caching_only_discounts() -> None:
    rates = resolve_rates("gpt-4o-mini")
    assert worst_case_input_rate(rates) == rates.input_usd_per_token
    # (1000 × 1.5e-7 + 100 × 6e-7) × 1.2 / 0.01 SPU = 0.0252 SPU
    assert worst_case_units(1_000, 100, rates, POLICY) == 25_200


def test_affordable_max_tokens_matches_a_hand_computed_boundary() -> None:
    rates = resolve_rates("claude-sonnet-4-5")
    # 5 SPU pay 0.05 / 1.2 USD; the prompt takes 0.00375; each output token 1.5e-5.
    assert affordable_max_tokens(5_000_000, 1_000, rates, POLICY) == 2_527


def test_affordable_is_exact_on_both_sides_of_the_boundary() -> None:
    rates = resolve_rates("gpt-4o-mini")
    needed = worst_case_units(500, 1_234, rates, POLICY)
    assert affordable_max_tokens(needed, 500, rates, POLICY) >= 1_234
    assert affordable_max_tokens(needed - 1, 500, rates, POLICY) < 1_234


def test_nothing_is_affordable_when_the_prompt_alone_is_not() -> None:
    rates = resolve_rates("gpt-4o-mini")
    prompt_only = worst_case_units(10_000, 0, rates, POLICY)
    assert affordable_max_tokens(prompt_only - 1, 10_000, rates, POLICY) == 0
    assert affordable_max_tokens(0, 10_000, rates, POLICY) == 0
    assert affordable_max_tokens(-5_000, 10_000, rates, POLICY) == 0


def test_free_output_is_capped_by_the_limit() -> None:
    rates = ModelRates(Decimal("0.000001"), Decimal(0), Decimal("0.000001"), Decimal("0.000001"))
    assert affordable_max_tokens(1_000_000, 10, rates, POLICY, limit_tokens=8_192) == 8_192
    assert affordable_max_tokens(1_000_000, 10, rates, POLICY) == MAX_TOKEN_COUNT


def test_limit_caps_an_affordable_answer() -> None:
    rates = resolve_rates("gpt-4o-mini")
    assert affordable_max_tokens(10**9, 10, rates, POLICY, limit_tokens=4_096) == 4_096


rates_strategy = st.builds(
    ModelRates,
    st.decimals(min_value=0, max_value=Decimal("0.0001"), places=12),
    st.decimals(min_value=Decimal("1E-12"), max_value=Decimal("0.0001"), places=12),
    st.decimals(min_value=0, max_value=Decimal("0.0001"), places=12),
    st.decimals(min_value=0, max_value=Decimal("0.0001"), places=12),
)
policies = st.builds(
    PricingPolicy,
    markup=st.decimals(min_value=0, max_value=3, places=3),
    usd_per_spu=st.decimals(min_value=Decimal("0.0001"), max_value=10, places=4),
)
prompt_counts = st.integers(min_value=0, max_value=2_000_000)


@given(st.integers(min_value=-100, max_value=10**10), prompt_counts, rates_strategy, policies)
def test_affordable_max_tokens_is_the_largest_that_fits(
    available: int, prompt_tokens: int, rates: ModelRates, policy: PricingPolicy
) -> None:
    affordable = affordable_max_tokens(available, prompt_tokens, rates, policy)
    if worst_case_units(prompt_tokens, 0, rates, policy) > available:
        assert affordable == 0
        return
    assert worst_case_units(prompt_tokens, affordable, rates, policy) <= available
    if affordable < MAX_TOKEN_COUNT:
        assert worst_case_units(prompt_tokens, affordable + 1, rates, policy) > available


@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    rates_strategy,
    policies,
)
def test_no_way_of_spending_the_prompt_costs_more_than_the_worst_case(
    uncached: int,
    cache_writes: int,
    cache_reads: int,
    max_output: int,
    rates: ModelRates,
    policy: PricingPolicy,
) -> None:
    prompt_tokens = uncached + cache_writes + cache_reads
    actual = TokenCounts(uncached, max_output, cache_writes, cache_reads)
    assert cost_pico_usd(actual, rates) <= worst_case_cost_pico_usd(
        prompt_tokens, max_output, rates
    )
    assert units_for_cost(cost_pico_usd(actual, rates), policy) <= worst_case_units(
        prompt_tokens, max_output, rates, policy
    )
