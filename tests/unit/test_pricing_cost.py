"""Provider cost from usage: exact, in pico-USD, rounded up once; usage normalised."""

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.cost import cost_pico_usd, cost_usd
from pricing.costmap import ModelRates, resolve_rates
from pricing.errors import InvalidTokenCounts
from pricing.token_counts import (
    MAX_TOKEN_COUNT,
    TokenCounts,
    counts_from_anthropic,
    counts_from_openai,
)


def flat_rates(
    input_usd: str, output_usd: str, creation_usd: str | None = None, read_usd: str | None = None
) -> ModelRates:
    return ModelRates(
        input_usd_per_token=Decimal(input_usd),
        output_usd_per_token=Decimal(output_usd),
        cache_creation_input_usd_per_token=Decimal(creation_usd or input_usd),
        cache_read_input_usd_per_token=Decimal(read_usd or input_usd),
    )


def test_one_gpt_4o_mini_token_costs_exactly_its_litellm_rate() -> None:
    rates = resolve_rates("gpt-4o-mini")
    assert cost_pico_usd(TokenCounts(input_tokens=1, output_tokens=0), rates) == 150_000
    assert cost_pico_usd(TokenCounts(input_tokens=0, output_tokens=1), rates) == 600_000
    usage = TokenCounts(input_tokens=0, output_tokens=0, cache_read_input_tokens=1)
    assert cost_pico_usd(usage, rates) == 75_000


def test_claude_call_with_cache_writes_and_reads_costs_each_at_its_rate() -> None:
    usage = TokenCounts(
        input_tokens=100,
        output_tokens=50,
        cache_creation_input_tokens=1_000,
        cache_read_input_tokens=2_000,
    )
    rates = resolve_rates("claude-sonnet-4-5")
    # 100×3e-6 + 50×1.5e-5 + 1000×3.75e-6 + 2000×3e-7 = 0.0054 USD
    assert cost_usd(usage, rates) == Decimal("0.0054")
    assert cost_pico_usd(usage, rates) == 5_400_000_000


def test_cost_is_rounded_up_to_the_pico_usd() -> None:
    rates = flat_rates("1E-13", "0")  # a tenth of a pico-USD per token
    assert cost_pico_usd(TokenCounts(input_tokens=1, output_tokens=0), rates) == 1
    assert cost_pico_usd(TokenCounts(input_tokens=10, output_tokens=0), rates) == 1
    assert cost_pico_usd(TokenCounts(input_tokens=11, output_tokens=0), rates) == 2
    assert cost_pico_usd(TokenCounts(input_tokens=0, output_tokens=0), rates) == 0


def test_cost_is_rounded_once_after_summing_not_per_kind() -> None:
    rates = flat_rates("4E-13", "4E-13")
    assert cost_pico_usd(TokenCounts(input_tokens=1, output_tokens=1), rates) == 1


rate_strategy = st.decimals(min_value=0, max_value=Decimal("0.001"), places=20)
count_strategy = st.integers(min_value=0, max_value=10**9)


@given(
    st.tuples(rate_strategy, rate_strategy, rate_strategy, rate_strategy),
    st.tuples(count_strategy, count_strategy, count_strategy, count_strategy),
)
def test_cost_is_the_exact_value_rounded_up(
    rate_values: tuple[Decimal, Decimal, Decimal, Decimal],
    counts: tuple[int, int, int, int],
) -> None:
    rates = ModelRates(*rate_values)
    usage = TokenCounts(*counts)
    exact_pico = (
        sum(
            (
                Fraction(count) * Fraction(rate)
                for count, rate in zip(counts, rate_values, strict=True)
            ),
            Fraction(0),
        )
        * 10**12
    )
    assert cost_pico_usd(usage, rates) == math.ceil(exact_pico)


@pytest.mark.parametrize("field", ["input_tokens", "output_tokens", "cache_read_input_tokens"])
@pytest.mark.parametrize("value", [-1, MAX_TOKEN_COUNT + 1])
def test_token_counts_are_bounded(field: str, value: int) -> None:
    counts = {"input_tokens": 0, "output_tokens": 0, field: value}
    with pytest.raises(ValueError):
        TokenCounts(**counts)


def test_openai_cached_tokens_are_taken_out_of_prompt_tokens() -> None:
    usage = counts_from_openai(
        {
            "prompt_tokens": 1_000,
            "completion_tokens": 20,
            "total_tokens": 1_020,
            "prompt_tokens_details": {"cached_tokens": 800, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 10},
        }
    )
    assert usage == TokenCounts(input_tokens=200, output_tokens=20, cache_read_input_tokens=800)
    assert usage.prompt_tokens == 1_000
    assert usage.total_tokens == 1_020


def test_openai_usage_without_details_is_all_uncached() -> None:
    usage = counts_from_openai({"prompt_tokens": 12, "completion_tokens": 3})
    assert usage == TokenCounts(input_tokens=12, output_tokens=3)


def test_openai_responses_api_usage_is_read_the_same_way() -> None:
    usage = counts_from_openai(
        {"input_tokens": 50, "output_tokens": 7, "input_tokens_details": {"cached_tokens": 40}}
    )
    assert usage == TokenCounts(input_tokens=10, output_tokens=7, cache_read_input_tokens=40)


def test_litellm_relayed_anthropic_usage_prices_like_anthropics_own_report() -> None:
    anthropic = {
        "input_tokens": 200,
        "output_tokens": 10,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 1_000,
    }
    litellm_openai_shape = {
        "prompt_tokens": 1_500,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 1_000, "cache_creation_tokens": 300},
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 1_000,
    }
    expected = TokenCounts(
        input_tokens=200,
        output_tokens=10,
        cache_creation_input_tokens=300,
        cache_read_input_tokens=1_000,
    )
    assert counts_from_anthropic(anthropic) == expected
    assert counts_from_openai(litellm_openai_shape) == expected


def test_anthropic_null_cache_counts_are_zero() -> None:
    usage = counts_from_anthropic(
        {
            "input_tokens": 25,
            "output_tokens": 5,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
        }
    )
    assert usage == TokenCounts(input_tokens=25, output_tokens=5)


@pytest.mark.parametrize(
    "report",
    [
        {"completion_tokens": 3},
        {"prompt_tokens": 10},
        {"prompt_tokens": -1, "completion_tokens": 3},
        {"prompt_tokens": "10", "completion_tokens": 3},
        {"prompt_tokens": True, "completion_tokens": 3},
        {"prompt_tokens": 10.0, "completion_tokens": 3},
        {
            "prompt_tokens": 10,
            "completion_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 11},
        },
    ],
)
def test_unreadable_openai_usage_raises_invalid_usage(report: dict[str, object]) -> None:
    with pytest.raises(InvalidTokenCounts):
        counts_from_openai(report)


@pytest.mark.parametrize(
    "report",
    [
        {"output_tokens": 3},
        {"input_tokens": 3},
        {"input_tokens": 3, "output_tokens": 1, "cache_read_input_tokens": -2},
    ],
)
def test_unreadable_anthropic_usage_raises_invalid_usage(report: dict[str, object]) -> None:
    with pytest.raises(InvalidTokenCounts):
        counts_from_anthropic(report)
