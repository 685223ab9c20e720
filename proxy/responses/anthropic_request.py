"""A Responses request as the Anthropic Messages request a native Claude upstream answers.

Translated directly, not through Chat Completions: both APIs have typed content
blocks, and only a direct translation keeps what Chat has no place for — a
model's thinking and its signature (carried in a reasoning item's
``encrypted_content``, so a later turn can hand it back), and prompt-cache
reads and writes reported as the separate price classes they are.

- System and developer messages, wherever they stand, become ``system`` text
  blocks in order (Messages has no system role inside the conversation).
- Consecutive items of one role become one turn: an assistant's text,
  thinking and tool calls one assistant message, tool results and the user's
  next words one user message, as Messages requires.
- Images become base64 or URL image blocks; inline files become documents.
- ``reasoning.effort`` asks for extended thinking with a token budget
  (``THINKING_BUDGETS``), kept below the output bound; ``parallel_tool_calls:
  false`` becomes ``disable_parallel_tool_use``; ``user`` becomes
  ``metadata.user_id``.
- Refused with a 400: what ``chat_request`` refuses, structured output
  (``text.format`` other than text), and files by id.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.anthropic.translation import tool_input
from proxy.errors import bad_request
from proxy.responses.chat_request import refuse_stateful
from proxy.responses.items import (
    Entry,
    File,
    Image,
    Message,
    Part,
    Reasoning,
    Text,
    ToolCall,
    ToolOutput,
    conversation,
)
from proxy.responses.tools import Tools, read_tools, unsupported

REDACTED_THINKING_PREFIX = "anthropic.redacted_thinking:"
"""Marks a reasoning item's ``encrypted_content`` that holds redacted thinking, not a signature."""
MIN_THINKING_BUDGET = 1024
"""The least ``budget_tokens`` Anthropic accepts."""
THINKING_BUDGETS = {
    "minimal": 1024,
    "low": 4096,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
_DATA_URL = re.compile(r"data:(?P<media_type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class AnthropicTranslation:
    body: dict[str, Any]
    tools: Tools


def anthropic_request(
    body: Mapping[str, Any], provider_model: str, *, max_tokens: int
) -> AnthropicTranslation:
    """The Messages body; ``max_tokens`` is the output bound the call is held for."""
    refuse_stateful(body)
    tools = read_tools(body)
    _refuse_structured_output(body.get("text"))
    system, messages = _turns(conversation(body))
    request: dict[str, Any] = {
        "model": provider_model,
        "max_tokens": max_tokens,
        "messages": messages,
    }
    if system:
        request["system"] = system
    for field in ("temperature", "top_p"):
        if body.get(field) is not None:
            request[field] = body[field]
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        request["metadata"] = {"user_id": user}
    _apply_tools(tools, body.get("parallel_tool_calls"), request)
    _apply_thinking(body.get("reasoning"), max_tokens, request)
    if body.get("stream") is True:
        request["stream"] = True
    return AnthropicTranslation(request, tools)


def _refuse_structured_output(text: object) -> None:
    if not isinstance(text, Mapping):
        return
    format_ = text.get("format")
    if isinstance(format_, Mapping) and format_.get("type") not in (None, "text"):
        raise unsupported(f"A text.format of type '{format_.get('type')}'", "text.format")


def _turns(entries: list[Entry]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []

    def turn(role: str) -> list[dict[str, Any]]:
        if not messages or messages[-1]["role"] != role:
            messages.append({"role": role, "content": []})
        content: list[dict[str, Any]] = messages[-1]["content"]
        return content

    for entry in entries:
        if isinstance(entry, Message) and entry.role == "system":
            system.extend(_block(part) for part in entry.parts)
        elif isinstance(entry, Message):
            turn(entry.role).extend(_block(part) for part in entry.parts)
        elif isinstance(entry, ToolCall):
            turn("assistant").append(
                {
                    "type": "tool_use",
                    "id": entry.call_id,
                    "name": entry.upstream_name,
                    "input": tool_input(entry.arguments),
                }
            )
        elif isinstance(entry, ToolOutput):
            turn("user").append(
                {
                    "type": "tool_result",
                    "tool_use_id": entry.call_id,
                    "content": [_block(part) for part in entry.parts],
                }
            )
        else:
            assert isinstance(entry, Reasoning)
            thinking = _thinking(entry)
            if thinking is not None:
                turn("assistant").append(thinking)
    return system, messages


def _block(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        match = _DATA_URL.fullmatch(part.url)
        if match:
            source = {"type": "base64", **match.groupdict()}
        else:
            source = {"type": "url", "url": part.url}
        return {"type": "image", "source": source}
    assert isinstance(part, File)
    match = _DATA_URL.fullmatch(part.file_data or "")
    if match is None:
        raise unsupported("A file by file_id, or not given as a base64 data URL,", "input")
    document: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", **match.groupdict()},
    }
    if part.filename:
        document["title"] = part.filename
    return document


def _thinking(reasoning: Reasoning) -> dict[str, Any] | None:
    """Thinking handed back to Claude, which reads it only with the signature it came with."""
    encrypted = reasoning.encrypted_content
    if encrypted is None:
        return None
    if encrypted.startswith(REDACTED_THINKING_PREFIX):
        return {
            "type": "redacted_thinking",
            "data": encrypted.removeprefix(REDACTED_THINKING_PREFIX),
        }
    return {"type": "thinking", "thinking": reasoning.text, "signature": encrypted}


def _apply_tools(tools: Tools, parallel: object, request: dict[str, Any]) -> None:
    if parallel is not None and not isinstance(parallel, bool):
        raise bad_request("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls")
    if not tools.functions:
        if tools.mode == "required":
            raise bad_request(
                "'tool_choice' requires a tool call, but no tool this model can call is given.",
                param="tool_choice",
            )
        return
    request["tools"] = [
        {
            "name": tool.upstream_name,
            "input_schema": tool.parameters or {"type": "object", "properties": {}},
            **({"description": tool.description} if tool.description else {}),
        }
        for tool in tools.functions
    ]
    choice: dict[str, Any]
    if tools.forced is not None:
        choice = {"type": "tool", "name": tools.forced}
    else:
        choice = {"type": {"auto": "auto", "required": "any", "none": "none"}[tools.mode]}
    if parallel is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    request["tool_choice"] = choice


def _apply_thinking(reasoning: object, max_tokens: int, request: dict[str, Any]) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, Mapping):
        raise bad_request("'reasoning' must be an object.", param="reasoning")
    effort = reasoning.get("effort")
    if effort is None or effort == "none":
        return
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise bad_request(
            f"'reasoning.effort' must be one of {', '.join(['none', *THINKING_BUDGETS])}.",
            param="reasoning.effort",
        )
    budget = min(budget, max_tokens - 1)
    if budget >= MIN_THINKING_BUDGET:
        request["thinking"] = {"type": "enabled", "budget_tokens": budget}
