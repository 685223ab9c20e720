"""Token counts as providers report them (their ``usage`` objects), in one shape for pricing.

OpenAI counts cached tokens inside ``prompt_tokens``; Anthropic reports them
beside ``input_tokens``. Pricing needs each kind once, so both are read into
``TokenCounts`` where every field is disjoint from the others.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from pricing.errors import InvalidTokenCounts

MAX_TOKEN_COUNT = 10**12
"""Bound on any one count: far above every context window, small enough for exact arithmetic."""


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= MAX_TOKEN_COUNT:
        raise ValueError(f"{name} must be between 0 and {MAX_TOKEN_COUNT}, not {value}")


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Tokens of one call by price class; the input fields do not overlap."""

    input_tokens: int
    """Prompt tokens read neither from nor into the prompt cache."""
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __post_init__(self) -> None:
        _check_count("input_tokens", self.input_tokens)
        _check_count("output_tokens", self.output_tokens)
        _check_count("cache_creation_input_tokens", self.cache_creation_input_tokens)
        _check_count("cache_read_input_tokens", self.cache_read_input_tokens)

    @property
    def prompt_tokens(self) -> int:
        """Every prompt token, cached or not: what usage records call prompt tokens."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


def _count(usage: Mapping[str, object], *names: str, required: bool = False) -> int:
    """The first of ``names`` present; absent or null optional counts are zero."""
    for name in names:
        value = usage.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidTokenCounts(name, value)
        if not 0 <= value <= MAX_TOKEN_COUNT:
            raise InvalidTokenCounts(name, value)
        return value
    if required:
        raise InvalidTokenCounts(names[0], None)
    return 0


def _details(usage: Mapping[str, object], *names: str) -> Mapping[str, object]:
    for name in names:
        value = usage.get(name)
        if isinstance(value, Mapping):
            return value
    return {}


def counts_from_openai(usage: Mapping[str, object], *, output_required: bool = True) -> TokenCounts:
    """Read an OpenAI-shaped usage object (Chat Completions, Embeddings or Responses).

    ``prompt_tokens`` includes the cached reads in ``prompt_tokens_details.
    cached_tokens``. litellm, relaying providers that charge for cache writes,
    also includes those in ``prompt_tokens`` and reports them as
    ``cache_creation_input_tokens`` (top level) or ``cache_creation_tokens`` /
    ``cache_write_tokens`` (in the details); the largest report is taken so a
    write is never billed as a cheaper read or plain input. Embeddings generate
    nothing and report no output count (``output_required=False``); any other
    report without one cannot be read, rather than be taken as free output.
    """
    prompt_tokens = _count(usage, "prompt_tokens", "input_tokens", required=True)
    output_tokens = _count(usage, "completion_tokens", "output_tokens", required=output_required)
    details = _details(usage, "prompt_tokens_details", "input_tokens_details")
    cache_read_tokens = _count(details, "cached_tokens")
    cache_creation_tokens = max(
        _count(usage, "cache_creation_input_tokens"),
        _count(details, "cache_creation_tokens"),
        _count(details, "cache_write_tokens"),
    )
    uncached_tokens = prompt_tokens - cache_read_tokens - cache_creation_tokens
    if uncached_tokens < 0:
        raise InvalidTokenCounts("prompt_tokens", prompt_tokens)
    return TokenCounts(
        input_tokens=uncached_tokens,
        output_tokens=output_tokens,
        cache_creation_input_tokens=cache_creation_tokens,
        cache_read_input_tokens=cache_read_tokens,
    )


def counts_from_anthropic(usage: Mapping[str, object]) -> TokenCounts:
    """Read an Anthropic Messages usage object; its ``input_tokens`` are already uncached."""
    return TokenCounts(
        input_tokens=_count(usage, "input_tokens", required=True),
        output_tokens=_count(usage, "output_tokens", required=True),
        cache_creation_input_tokens=_count(usage, "cache_creation_input_tokens"),
        cache_read_input_tokens=_count(usage, "cache_read_input_tokens"),
    )
