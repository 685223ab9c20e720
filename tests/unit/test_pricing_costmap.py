"""Prices from litellm's cost map, read offline, with configured overrides."""

import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from pricing import costmap
from pricing.costmap import ModelRates, RateOverride, load_cost_map, resolve_rates
from pricing.errors import UnknownModelPrice

FAKE_MAP: dict[str, object] = {
    "sample_spec": {"input_cost_per_token": "price", "litellm_provider": "one of …"},
    "plain-model": {
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
        "litellm_provider": "openai",
        "max_output_tokens": 4096,
    },
    "cached-model": {
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_read_input_token_cost": 3e-07,
        "litellm_provider": "anthropic",
    },
    "vendor/cached-model": {
        "input_cost_per_token": 4e-06,
        "output_cost_per_token": 2e-05,
        "litellm_provider": "vendor",
    },
    "output-only": {"output_cost_per_token": 7.5e-06, "litellm_provider": "bedrock"},
    "free-model": {"input_cost_per_token": 0, "output_cost_per_token": 0.0},
    "negative": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06},
    "boolean": {"input_cost_per_token": True, "output_cost_per_token": 1e-06},
    "too-fine": {"input_cost_per_token": 1e-40, "output_cost_per_token": 1e-06},
    "bad-max": {
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 1e-06,
        "max_output_tokens": "x",
    },
}


@pytest.fixture
def fake_map(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mapping[str, object]]:
    monkeypatch.setattr(costmap, "load_cost_map", lambda: FAKE_MAP)
    yield FAKE_MAP


def test_the_bundled_map_is_litellm_s_file_inside_this_package_and_parsed_once() -> None:
    path = costmap.cost_map_path()
    assert path.name == "model_prices_and_context_window_backup.json"
    assert path.is_relative_to(Path(costmap.__file__).parent)
    assert path.is_file()
    assert load_cost_map() is load_cost_map()


def test_gpt_4o_mini_rates_are_litellm_floats_as_exact_decimals() -> None:
    rates = resolve_rates("gpt-4o-mini")
    assert rates.input_usd_per_token == Decimal("1.5E-7")
    assert rates.output_usd_per_token == Decimal("6E-7")
    assert rates.cache_read_input_usd_per_token == Decimal("7.5E-8")
    assert rates.litellm_provider == "openai"
    assert rates.max_output_tokens == 16384


def test_claude_cache_write_and_read_rates_come_from_the_map() -> None:
    rates = resolve_rates("claude-sonnet-4-5")
    assert rates.input_usd_per_token == Decimal("0.000003")
    assert rates.output_usd_per_token == Decimal("0.000015")
    assert rates.cache_creation_input_usd_per_token == Decimal("0.00000375")
    assert rates.cache_read_input_usd_per_token == Decimal("3E-7")


def test_every_priced_map_entry_converts_to_the_shortest_decimal_of_its_float() -> None:
    raw = json.loads(costmap.cost_map_path().read_bytes())
    checked = 0
    for model, entry in raw.items():
        try:
            rates = resolve_rates(model)
        except UnknownModelPrice:
            continue
        assert rates.input_usd_per_token == Decimal(str(entry["input_cost_per_token"]))
        assert rates.output_usd_per_token == Decimal(str(entry["output_cost_per_token"]))
        checked += 1
    assert checked > 1000


def test_provider_prefixed_names_fall_back_to_the_bare_name_of_that_provider() -> None:
    assert resolve_rates("anthropic/claude-sonnet-4-5") == resolve_rates("claude-sonnet-4-5")
    assert resolve_rates("openai/gpt-4o") == resolve_rates("gpt-4o")


def test_exact_prefixed_entry_wins_over_the_bare_name(fake_map: Mapping[str, object]) -> None:
    assert resolve_rates("vendor/cached-model").input_usd_per_token == Decimal("0.000004")
    assert resolve_rates("anthropic/cached-model").input_usd_per_token == Decimal("0.000003")


def test_a_prefix_never_borrows_another_providers_price(fake_map: Mapping[str, object]) -> None:
    with pytest.raises(UnknownModelPrice):
        resolve_rates("azure/plain-model")


def test_unknown_model_raises_a_typed_error_naming_it(fake_map: Mapping[str, object]) -> None:
    with pytest.raises(UnknownModelPrice) as caught:
        resolve_rates("no-such-model")
    assert caught.value.model == "no-such-model"
    assert caught.value.missing == "input_usd_per_token"


@pytest.mark.parametrize("model", ["sample_spec", "negative", "boolean", "too-fine"])
def test_malformed_map_rates_count_as_unknown(fake_map: Mapping[str, object], model: str) -> None:
    with pytest.raises(UnknownModelPrice):
        resolve_rates(model)


def test_missing_cache_rates_default_to_the_input_rate(fake_map: Mapping[str, object]) -> None:
    rates = resolve_rates("plain-model")
    assert rates.cache_creation_input_usd_per_token == Decimal("0.000001")
    assert rates.cache_read_input_usd_per_token == Decimal("0.000001")


def test_zero_rates_are_prices_not_gaps(fake_map: Mapping[str, object]) -> None:
    rates = resolve_rates("free-model")
    assert rates.input_usd_per_token == rates.output_usd_per_token == 0
    free_reads = resolve_rates(
        "cached-model", RateOverride(cache_read_input_usd_per_token=Decimal(0))
    )
    assert free_reads.cache_read_input_usd_per_token == 0


def test_malformed_max_output_tokens_is_dropped(fake_map: Mapping[str, object]) -> None:
    assert resolve_rates("bad-max").max_output_tokens is None


def test_override_replaces_only_the_fields_it_sets(fake_map: Mapping[str, object]) -> None:
    rates = resolve_rates("cached-model", RateOverride(input_usd_per_token=Decimal("0.000002")))
    assert rates == ModelRates(
        input_usd_per_token=Decimal("0.000002"),
        output_usd_per_token=Decimal("0.000015"),
        cache_creation_input_usd_per_token=Decimal("0.00000375"),
        cache_read_input_usd_per_token=Decimal("3E-7"),
        litellm_provider="anthropic",
    )


def test_defaulted_cache_rates_follow_an_overridden_input_rate(
    fake_map: Mapping[str, object],
) -> None:
    rates = resolve_rates("plain-model", RateOverride(input_usd_per_token=Decimal("0.000005")))
    assert rates.cache_creation_input_usd_per_token == Decimal("0.000005")
    assert rates.cache_read_input_usd_per_token == Decimal("0.000005")
    assert rates.max_output_tokens == 4096


def test_override_stands_alone_for_a_model_the_map_lacks(fake_map: Mapping[str, object]) -> None:
    override = RateOverride(
        input_usd_per_token=Decimal("0.0000001"),
        output_usd_per_token=Decimal("0.0000004"),
        max_output_tokens=8192,
    )
    rates = resolve_rates("my-local-llama", override)
    assert rates.input_usd_per_token == Decimal("0.0000001")
    assert rates.cache_creation_input_usd_per_token == Decimal("0.0000001")
    assert rates.max_output_tokens == 8192
    assert rates.litellm_provider is None


def test_override_completes_a_map_entry_missing_a_rate(fake_map: Mapping[str, object]) -> None:
    with pytest.raises(UnknownModelPrice):
        resolve_rates("output-only")
    rates = resolve_rates("output-only", RateOverride(input_usd_per_token=Decimal("0.000001")))
    assert rates.output_usd_per_token == Decimal("0.0000075")
    assert rates.litellm_provider == "bedrock"


def test_override_lacking_the_output_rate_of_an_unmapped_model_is_refused(
    fake_map: Mapping[str, object],
) -> None:
    with pytest.raises(UnknownModelPrice) as caught:
        resolve_rates("my-local-llama", RateOverride(input_usd_per_token=Decimal("0.000001")))
    assert caught.value.missing == "output_usd_per_token"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (1e-06, TypeError),
        (Decimal("-0.000001"), ValueError),
        (Decimal("NaN"), ValueError),
        (Decimal("Infinity"), ValueError),
        (Decimal("2"), ValueError),
        (Decimal("1E-31"), ValueError),
    ],
)
def test_rates_must_be_bounded_exact_decimals(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        RateOverride(input_usd_per_token=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, -5, True])
def test_max_output_tokens_must_be_positive(value: int) -> None:
    with pytest.raises(ValueError):
        RateOverride(max_output_tokens=value)
