"""Every field the Messages routes read, checked before anything is estimated or held.

Each checker returns the field as the route uses it, or raises a 400 whose
message names it (Anthropic's error shape has no ``param``, so the name leads
the message as Anthropic's own errors do).
"""

from dataclasses import dataclass
from typing import Any

from proxy.model_registry import ServedModel
from proxy.request_body import MAX_TOKENS_LIMIT, flag, invalid_field, json_array, positive_int

TOOL_CHOICE_TYPES = ("auto", "any", "tool", "none")


@dataclass(frozen=True, slots=True)
class Prompt:
    """What a Messages request sends the model before it answers."""

    system: str | list[Any] | None
    messages: list[Any]
    tools: list[Any] | None


def prompt(body: dict[str, Any]) -> Prompt:
    messages = json_array(body, "messages")
    if not messages:
        raise invalid_field("messages", "a non-empty array")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise invalid_field("system", "a string or an array of content blocks")
    return Prompt(system=system, messages=messages, tools=json_array(body, "tools"))


def stream(body: dict[str, Any]) -> bool:
    return flag(body, "stream")


def tool_choice(body: dict[str, Any]) -> None:
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if not isinstance(kind, str) or kind not in TOOL_CHOICE_TYPES:
        raise invalid_field("tool_choice", f"an object whose type is one of {TOOL_CHOICE_TYPES}")


def output_bound(body: dict[str, Any], model: ServedModel) -> int:
    """``max_tokens`` is required; no call produces more than the model can."""
    requested = positive_int(body, "max_tokens")
    if requested is None:
        raise invalid_field("max_tokens", f"an integer from 1 to {MAX_TOKENS_LIMIT} (required)")
    maximum = model.rates.max_output_tokens
    return min(requested, maximum) if maximum else requested
