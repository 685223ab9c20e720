"""Responses usage ⇄ the gateway's token counts.

A Responses ``usage`` counts ``input_tokens`` with the cache reads
(``input_tokens_details.cached_tokens``, priced at the cached-input rate) and
writes (``cache_write_tokens``) inside it, and ``output_tokens`` with the
reasoning tokens (``output_tokens_details.reasoning_tokens``) inside it: the
same shape as Chat Completions usage under other names, which
``counts_from_openai`` reads. A report whose reasoning exceeds its output cannot
have counted the reasoning inside the output, so the two are added: reasoning
is output the provider charges for, whether or not it is shown.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pricing import InvalidTokenCounts, TokenCounts, counts_from_openai
from proxy.call.receipt import Receipt
from proxy.call.sse import typed_event
from proxy.call.tally import reported_counts


def _reasoning_tokens(usage: Mapping[str, object], details_name: str) -> int:
    details = usage.get(details_name)
    value = details.get("reasoning_tokens") if isinstance(details, Mapping) else None
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidTokenCounts("reasoning_tokens", value)
    return value


def token_counts(usage: Mapping[str, object]) -> TokenCounts:
    """A Responses ``usage`` object as token counts; ``InvalidTokenCounts`` if it is not one."""
    counts = counts_from_openai(usage)
    reasoning = _reasoning_tokens(usage, "output_tokens_details")
    if reasoning > counts.output_tokens:
        return replace(counts, output_tokens=counts.output_tokens + reasoning)
    return counts


def reported_token_counts(usage: object) -> TokenCounts | None:
    """The provider's counts, or None when it sent none or ones that cannot be read."""
    return reported_counts(usage, token_counts)


def chat_reasoning_tokens(usage: object) -> int:
    """The reasoning tokens a Chat Completions usage reports (inside its completion tokens)."""
    if not isinstance(usage, Mapping):
        return 0
    try:
        return _reasoning_tokens(usage, "completion_tokens_details")
    except InvalidTokenCounts:
        return 0


def responses_usage(counts: TokenCounts, *, reasoning_tokens: int = 0) -> dict[str, object]:
    """What the client is told a translated call used: the counts it is charged for."""
    return {
        "input_tokens": counts.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": counts.cache_read_input_tokens,
            "cache_write_tokens": counts.cache_creation_input_tokens,
        },
        "output_tokens": counts.output_tokens,
        "output_tokens_details": {"reasoning_tokens": min(reasoning_tokens, counts.output_tokens)},
        "total_tokens": counts.total_tokens,
    }


def final_event_with_receipt(event: Mapping[str, Any], receipt: Receipt) -> bytes | None:
    """A final event (``response.completed``, ...) with the receipt in its ``response.usage``;
    None when it has no usage object to carry it."""
    response = event.get("response")
    if not isinstance(response, Mapping) or not isinstance(response.get("usage"), Mapping):
        return None
    usage = {**response["usage"], **receipt.usage_fields()}
    return typed_event({**event, "response": {**response, "usage": usage}})
