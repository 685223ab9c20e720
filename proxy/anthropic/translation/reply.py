"""A Chat Completions reply (or error) as the Messages reply an Anthropic client expects."""

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from pricing import TokenCounts
from proxy.errors import ANTHROPIC_PATH_PREFIX, ApiError, error_body

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def tool_use_id() -> str:
    """For a tool call the upstream gave no id: Anthropic's clients need one to answer it."""
    return f"toolu_{uuid.uuid4().hex[:24]}"


def anthropic_usage(counts: TokenCounts) -> dict[str, int]:
    """Token counts as a Messages ``usage`` object."""
    return {
        "input_tokens": counts.input_tokens,
        "cache_creation_input_tokens": counts.cache_creation_input_tokens,
        "cache_read_input_tokens": counts.cache_read_input_tokens,
        "output_tokens": counts.output_tokens,
    }


def first_message(body: object) -> Mapping[str, Any]:
    """The first choice's message of a Chat Completions body ({} when there is none)."""
    choices = body.get("choices") if isinstance(body, Mapping) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        message = choices[0].get("message")
        if isinstance(message, Mapping):
            return message
    return {}


def anthropic_message(
    body: Mapping[str, Any], model_name: str, counts: TokenCounts
) -> dict[str, Any]:
    """The Messages response for a Chat Completions response, charged at ``counts``."""
    message = first_message(body)
    content: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or tool_use_id(),
                "name": function.get("name", ""),
                "input": tool_input(function.get("arguments")),
            }
        )
    choices = body.get("choices") or [{}]
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model_name,
        "content": content,
        "stop_reason": STOP_REASONS.get(str(choices[0].get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": anthropic_usage(counts),
    }


def tool_input(arguments: object) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Anthropic wants; a model's malformed JSON is
    kept under ``_raw``. The one rule for both translations to Messages (Chat's, Responses')."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def anthropic_error(status: int, raw: bytes) -> dict[str, Any]:
    """An OpenAI-shaped upstream error body re-rendered in Anthropic's shape, same status."""
    message = "The upstream returned an error."
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        message = str(parsed["error"].get("message") or message)
    return error_body(ApiError(status, message), ANTHROPIC_PATH_PREFIX)
