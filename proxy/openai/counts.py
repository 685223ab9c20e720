"""The token counts an OpenAI-format upstream reports, and the text its reply generated."""

from collections.abc import Mapping
from functools import partial
from typing import Any

import orjson

from pricing import TokenCounts, counts_from_openai
from proxy.call.tally import reported_counts

_embedding_counts = partial(counts_from_openai, output_required=False)


def reported_openai_counts(usage: object, *, embeddings: bool = False) -> TokenCounts | None:
    """An OpenAI usage object as token counts, or None when absent or unreadable."""
    return reported_counts(usage, _embedding_counts if embeddings else counts_from_openai)


def choices_text(body: Mapping[str, Any]) -> str:
    """What a Chat Completions or Completions body generated, across its choices."""
    parts: list[str] = []
    for choice in body.get("choices") or []:
        if not isinstance(choice, Mapping):
            continue
        if isinstance(choice.get("text"), str):
            parts.append(choice["text"])
        message = choice.get("message")
        if isinstance(message, Mapping):
            parts.append(message_text(message))
    return "".join(parts)


def message_text(message: Mapping[str, Any]) -> str:
    """What one chat message generated: its content and its tool calls' JSON."""
    parts = [message["content"]] if isinstance(message.get("content"), str) else []
    for call in message.get("tool_calls") or []:
        if isinstance(call, Mapping):
            parts.append(orjson.dumps(call.get("function") or {}).decode())
    return "".join(parts)
