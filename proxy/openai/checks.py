"""Every field the OpenAI routes read, checked before anything is estimated or held.

Each checker returns the field as the route uses it, or raises a 400 naming
it. What a call may produce is bounded here too: the client's bound per
choice, clamped to the model's maximum, times the choices and prompts, capped
where pricing's exact arithmetic stops (``MAX_TOKEN_COUNT``).
"""

from dataclasses import dataclass
from typing import Any

from pricing import MAX_TOKEN_COUNT
from proxy.model_registry import ServedModel
from proxy.request_body import (
    MAX_CHOICES,
    MAX_TOKENS_LIMIT,
    flag,
    invalid_field,
    json_array,
    json_object,
    positive_int,
)

MAX_BEST_OF = 20
"""Legacy completions generate ``best_of`` candidates and bill them all; OpenAI's bound."""
LEGACY_DEFAULT_MAX_TOKENS = 16
"""What legacy completions generate per prompt when the request sets no ``max_tokens``."""
MAX_EMBEDDING_INPUTS = 2048
"""The most inputs one embeddings call may carry: OpenAI's bound."""


@dataclass(frozen=True, slots=True)
class Streaming:
    stream: bool
    client_wants_usage: bool
    """Whether the client asked for the usage chunk (``stream_options.include_usage``)."""


def streaming(body: dict[str, Any]) -> Streaming:
    stream = flag(body, "stream")
    options = json_object(body, "stream_options") or {}
    return Streaming(stream, flag(options, "include_usage", within="stream_options"))


def chat_messages(body: dict[str, Any]) -> list[Any]:
    messages = json_array(body, "messages")
    if not messages:
        raise invalid_field("messages", "a non-empty array")
    return messages


def chat_tools(body: dict[str, Any]) -> list[Any] | None:
    json_array(body, "functions")
    json_object(body, "response_format")
    return json_array(body, "tools")


def chat_output_bound(body: dict[str, Any], model: ServedModel, default_max_tokens: int) -> int:
    """Worst-case output tokens of a chat call: the bound per choice, times ``n``."""
    requested = positive_int(body, "max_completion_tokens", "max_tokens")
    return _capped(_clamped(requested or default_max_tokens, model), _choices(body))


def completion_prompts(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return prompt
    raise invalid_field("prompt", "a string or a non-empty array of strings")


def completion_output_bound(body: dict[str, Any], model: ServedModel, prompts: int) -> int:
    """Worst-case output tokens of a legacy completion: per candidate, prompt and choice."""
    per_candidate = positive_int(body, "max_tokens") or LEGACY_DEFAULT_MAX_TOKENS
    candidates = max(_choices(body), positive_int(body, "best_of", limit=MAX_BEST_OF) or 1)
    return _capped(_clamped(per_candidate, model), candidates, prompts)


def embedding_inputs(body: dict[str, Any]) -> list[str | list[int]]:
    """The inputs to embed: a string, strings, one token array, or token arrays."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and 0 < len(raw) <= MAX_EMBEDDING_INPUTS:
        if all(_is_token(item) for item in raw):
            return [raw]
        if all(isinstance(item, str) or _is_token_array(item) for item in raw):
            return raw
    raise invalid_field(
        "input",
        f"a string, an array of up to {MAX_EMBEDDING_INPUTS} strings, or token arrays",
    )


def _is_token(item: object) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= MAX_TOKENS_LIMIT


def _is_token_array(item: object) -> bool:
    return isinstance(item, list) and bool(item) and all(_is_token(token) for token in item)


def _choices(body: dict[str, Any]) -> int:
    return positive_int(body, "n", limit=MAX_CHOICES) or 1


def _clamped(bound: int, model: ServedModel) -> int:
    """No choice produces more than the model can."""
    maximum = model.rates.max_output_tokens
    return min(bound, maximum) if maximum else bound


def _capped(*factors: int) -> int:
    product = 1
    for factor in factors:
        product *= factor
    return min(product, MAX_TOKEN_COUNT)
