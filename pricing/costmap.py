"""Provider prices per token, from litellm's model cost map read offline.

The map is a plain JSON file inside the litellm package; this package ships a
byte-for-byte copy of the locked litellm's (``pricing.litellm_copies`` says
why), so prices need neither the network nor litellm installed. It is parsed
once per process.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from functools import cache
from pathlib import Path
from typing import TypeVar

from pricing.errors import PricingError, UnknownModelPrice

COST_MAP_FILE = "model_prices_and_context_window_backup.json"
"""The cost map litellm itself falls back to when told to stay local."""

MAX_USD_PER_TOKEN = Decimal(1)
RATE_QUANTUM_USD = Decimal("1E-30")
"""Finest price step accepted; with ``MAX_USD_PER_TOKEN`` it keeps costs exact in 120 digits."""

_WIDE = Context(prec=64)
"""Room for any accepted rate's 31 digits when checking its step."""


def _rate_error(value: Decimal) -> str | None:
    if not value.is_finite() or value < 0:
        return "a finite, non-negative price"
    if value > MAX_USD_PER_TOKEN:
        return f"at most {MAX_USD_PER_TOKEN} USD a token"
    if value != value.quantize(RATE_QUANTUM_USD, context=_WIDE):
        return f"a multiple of {RATE_QUANTUM_USD} USD"
    return None


def _check_rate(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    error = _rate_error(value)
    if error is not None:
        raise ValueError(f"{name} must be {error}, not {value}")


def _check_max_output_tokens(value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"max_output_tokens must be a positive integer, not {value!r}")


@dataclass(frozen=True, slots=True)
class ModelRates:
    """What one token costs at the provider, in USD, exactly."""

    input_usd_per_token: Decimal
    output_usd_per_token: Decimal
    cache_creation_input_usd_per_token: Decimal
    cache_read_input_usd_per_token: Decimal
    max_output_tokens: int | None = None
    litellm_provider: str | None = None

    def __post_init__(self) -> None:
        _check_rate("input_usd_per_token", self.input_usd_per_token)
        _check_rate("output_usd_per_token", self.output_usd_per_token)
        _check_rate("cache_creation_input_usd_per_token", self.cache_creation_input_usd_per_token)
        _check_rate("cache_read_input_usd_per_token", self.cache_read_input_usd_per_token)
        _check_max_output_tokens(self.max_output_tokens)


@dataclass(frozen=True, slots=True)
class RateOverride:
    """Configured prices for one model; each field set replaces the map's, ``None`` keeps it."""

    input_usd_per_token: Decimal | None = None
    output_usd_per_token: Decimal | None = None
    cache_creation_input_usd_per_token: Decimal | None = None
    cache_read_input_usd_per_token: Decimal | None = None
    max_output_tokens: int | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("input_usd_per_token", self.input_usd_per_token),
            ("output_usd_per_token", self.output_usd_per_token),
            ("cache_creation_input_usd_per_token", self.cache_creation_input_usd_per_token),
            ("cache_read_input_usd_per_token", self.cache_read_input_usd_per_token),
        ):
            if value is not None:
                _check_rate(name, value)
        _check_max_output_tokens(self.max_output_tokens)


def cost_map_path() -> Path:
    """The copy of litellm's cost map shipped in ``pricing/data``."""
    return Path(__file__).resolve().parent / "data" / COST_MAP_FILE


@cache
def load_cost_map() -> Mapping[str, object]:
    """The whole map, parsed once per process (≈25 ms for litellm 1.110's 3.5 MB file)."""
    loaded: object = json.loads(cost_map_path().read_bytes())
    if not isinstance(loaded, dict):
        raise PricingError(f"{cost_map_path()} is not a JSON object of models")
    return loaded


def _provider_matches(entry: Mapping[str, object], prefix: str) -> bool:
    """Whether a bare-name entry belongs to the provider named by the prefix.

    Without this check "azure/x" would silently take the price of OpenAI's "x".
    A prefix also covers its sub-providers ("vertex_ai" → "vertex_ai-language-models").
    """
    provider = entry.get("litellm_provider")
    return provider is None or (isinstance(provider, str) and provider.startswith(prefix))


def _map_entry(model: str) -> Mapping[str, object] | None:
    """The model's entry as litellm keys it: the exact name, else the name without its prefix."""
    cost_map = load_cost_map()
    entry = cost_map.get(model)
    if isinstance(entry, Mapping):
        return entry
    prefix, slash, bare = model.partition("/")
    if slash:
        entry = cost_map.get(bare)
        if isinstance(entry, Mapping) and _provider_matches(entry, prefix):
            return entry
    return None


def _map_rate(entry: Mapping[str, object], key: str) -> Decimal | None:
    """A rate from the map, exact, or ``None`` when absent or malformed (fail closed)."""
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # str() of a float is its shortest round-tripping text, so 1.5e-07 becomes
    # exactly Decimal("1.5E-7") rather than the binary float's long expansion.
    rate = Decimal(str(value))
    return rate if _rate_error(rate) is None else None


def _map_max_output_tokens(entry: Mapping[str, object]) -> int | None:
    value = entry.get("max_output_tokens")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def _map_rates(entry: Mapping[str, object]) -> RateOverride:
    return RateOverride(
        input_usd_per_token=_map_rate(entry, "input_cost_per_token"),
        output_usd_per_token=_map_rate(entry, "output_cost_per_token"),
        cache_creation_input_usd_per_token=_map_rate(entry, "cache_creation_input_token_cost"),
        cache_read_input_usd_per_token=_map_rate(entry, "cache_read_input_token_cost"),
        max_output_tokens=_map_max_output_tokens(entry),
    )


T = TypeVar("T")


def _pick(mine: T | None, theirs: T | None) -> T | None:
    return mine if mine is not None else theirs


def _overlay(base: RateOverride, top: RateOverride) -> RateOverride:
    return RateOverride(
        input_usd_per_token=_pick(top.input_usd_per_token, base.input_usd_per_token),
        output_usd_per_token=_pick(top.output_usd_per_token, base.output_usd_per_token),
        cache_creation_input_usd_per_token=_pick(
            top.cache_creation_input_usd_per_token, base.cache_creation_input_usd_per_token
        ),
        cache_read_input_usd_per_token=_pick(
            top.cache_read_input_usd_per_token, base.cache_read_input_usd_per_token
        ),
        max_output_tokens=_pick(top.max_output_tokens, base.max_output_tokens),
    )


def resolve_rates(model: str, override: RateOverride | None = None) -> ModelRates:
    """The model's prices: the map's entry with the configured override laid on top.

    The override may stand alone for a model the map does not know. Raises
    ``UnknownModelPrice`` when the input or output rate is still unknown.
    """
    entry = _map_entry(model)
    merged = RateOverride() if entry is None else _map_rates(entry)
    if override is not None:
        merged = _overlay(merged, override)
    if merged.input_usd_per_token is None:
        raise UnknownModelPrice(model, "input_usd_per_token")
    if merged.output_usd_per_token is None:
        raise UnknownModelPrice(model, "output_usd_per_token")
    provider = None if entry is None else entry.get("litellm_provider")
    # A missing cache rate falls back to the uncached input rate: it is the only
    # published price of an input token then, providers without prompt caching
    # never report cached tokens, and automatic (OpenAI-style) caches only ever
    # discount reads. Where the map is silent on a provider that charges a
    # premium for cache writes, an override must say so.
    input_rate = merged.input_usd_per_token
    cache_creation_rate = merged.cache_creation_input_usd_per_token
    cache_read_rate = merged.cache_read_input_usd_per_token
    return ModelRates(
        input_usd_per_token=input_rate,
        output_usd_per_token=merged.output_usd_per_token,
        cache_creation_input_usd_per_token=(
            input_rate if cache_creation_rate is None else cache_creation_rate
        ),
        cache_read_input_usd_per_token=input_rate if cache_read_rate is None else cache_read_rate,
        max_output_tokens=merged.max_output_tokens,
        litellm_provider=provider if isinstance(provider, str) else None,
    )
