"""A Responses request as the Chat Completions request an OpenAI-format upstream answers.

For the demo model, litellm-routed models and OpenAI-format upstreams that
have no ``/responses``. The conversation and tools come from ``items`` and
``tools``; settings map as they are documented to:

- ``max_output_tokens`` → ``max_completion_tokens``; ``reasoning.effort`` →
  ``reasoning_effort``; ``text.format`` → ``response_format``;
  ``text.verbosity`` → ``verbosity``; ``top_logprobs`` → ``logprobs`` and
  ``top_logprobs``; ``temperature``, ``top_p``, ``user``, ``safety_identifier``,
  ``prompt_cache_key`` and ``service_tier`` as they are.
- Reasoning items are left out: Chat Completions has no way to hand a model
  its earlier reasoning, and only the upstream that wrote it could read it.
- ``store``, ``include``, ``reasoning.summary``, ``truncation: "disabled"``,
  ``metadata``, ``stream_options`` and fields outside the API (Codex's
  ``client_metadata``) only shape how the answer is kept or reported, and are
  left out.
- What needs state or machinery the upstream lacks is refused with a 400
  naming it: ``previous_response_id``, ``conversation``, ``prompt``
  (templates), ``background``, ``truncation: "auto"``.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy.errors import bad_request
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
from proxy.responses.tools import FunctionTool, Tools, read_tools, unsupported

REFUSED_FIELDS = {
    "previous_response_id": "Continuing a stored response (previous_response_id)",
    "conversation": "A stored conversation",
    "prompt": "A stored prompt template",
}
COPIED_FIELDS = (
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
)


@dataclass(frozen=True, slots=True)
class ChatTranslation:
    """The Chat Completions body, and the tools the answer's calls are mapped back through."""

    body: dict[str, Any]
    tools: Tools


def refuse_stateful(body: Mapping[str, Any]) -> None:
    """A translated upstream keeps no state: requests that rely on some are refused."""
    for field, what in REFUSED_FIELDS.items():
        if body.get(field) is not None:
            raise unsupported(what, field)
    if body.get("background") is True:
        raise unsupported("A background response", "background")
    if body.get("truncation") not in (None, "disabled"):
        raise unsupported("Automatic truncation", "truncation")


def chat_request(body: Mapping[str, Any], provider_model: str) -> ChatTranslation:
    refuse_stateful(body)
    tools = read_tools(body)
    request: dict[str, Any] = {
        "model": provider_model,
        "messages": chat_messages(conversation(body)),
    }
    for field in COPIED_FIELDS:
        if body.get(field) is not None:
            request[field] = body[field]
    if body.get("max_output_tokens") is not None:
        request["max_completion_tokens"] = body["max_output_tokens"]
    _apply_tools(tools, body.get("parallel_tool_calls"), request)
    _apply_reasoning(body.get("reasoning"), request)
    _apply_text(body.get("text"), request)
    top_logprobs = body.get("top_logprobs")
    if top_logprobs is not None:
        request["logprobs"] = True
        request["top_logprobs"] = top_logprobs
    if body.get("stream") is True:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return ChatTranslation(request, tools)


def chat_messages(entries: list[Entry]) -> list[dict[str, Any]]:
    """The conversation as Chat messages.

    A Responses conversation lists an assistant's text and its function calls as
    separate items; Chat wants them in one assistant message, followed by one
    ``tool`` message per result. A tool result's images, which a ``tool``
    message cannot hold, follow the results in a user message.
    """
    messages: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, ToolOutput) and images:
            messages.append({"role": "user", "content": images})
            images = []
        if isinstance(entry, Message):
            messages.append(_message(entry))
        elif isinstance(entry, ToolCall):
            _assistant_for_calls(messages)["tool_calls"].append(
                {
                    "id": entry.call_id,
                    "type": "function",
                    "function": {"name": entry.upstream_name, "arguments": entry.arguments},
                }
            )
        elif isinstance(entry, ToolOutput):
            texts = [part.text for part in entry.parts if isinstance(part, Text)]
            images.extend(_part(part) for part in entry.parts if not isinstance(part, Text))
            messages.append(
                {"role": "tool", "tool_call_id": entry.call_id, "content": "\n".join(texts)}
            )
        else:
            assert isinstance(entry, Reasoning)
    if images:
        messages.append({"role": "user", "content": images})
    return messages


def _message(message: Message) -> dict[str, Any]:
    if message.role == "assistant":
        text = "".join(part.text for part in message.parts if isinstance(part, Text))
        return {"role": "assistant", "content": text}
    return {"role": message.role, "content": [_part(part) for part in message.parts]}


def _assistant_for_calls(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message a function call belongs to: the one just before, or a new one."""
    last = messages[-1] if messages else None
    if last is None or last["role"] != "assistant":
        last = {"role": "assistant", "content": None}
        messages.append(last)
    last.setdefault("tool_calls", [])
    return last


def _part(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        image: dict[str, Any] = {"url": part.url}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    assert isinstance(part, File)
    file: dict[str, Any] = {}
    if part.file_data is not None:
        file["file_data"] = part.file_data
    if part.file_id is not None:
        file["file_id"] = part.file_id
    if part.filename is not None:
        file["filename"] = part.filename
    return {"type": "file", "file": file}


def _tool(tool: FunctionTool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.upstream_name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _apply_tools(tools: Tools, parallel: object, request: dict[str, Any]) -> None:
    if not tools.functions:
        if tools.mode == "required":
            raise bad_request(
                "'tool_choice' requires a tool call, but no tool this model can call is given.",
                param="tool_choice",
            )
        return
    request["tools"] = [_tool(tool) for tool in tools.functions]
    if tools.forced is not None:
        request["tool_choice"] = {"type": "function", "function": {"name": tools.forced}}
    else:
        request["tool_choice"] = tools.mode
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise bad_request(
                "'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls"
            )
        request["parallel_tool_calls"] = parallel


def _apply_reasoning(reasoning: object, request: dict[str, Any]) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, Mapping):
        raise bad_request("'reasoning' must be an object.", param="reasoning")
    effort = reasoning.get("effort")
    if effort is not None:
        if not isinstance(effort, str):
            raise bad_request("'reasoning.effort' must be a string.", param="reasoning.effort")
        request["reasoning_effort"] = effort


def _apply_text(text: object, request: dict[str, Any]) -> None:
    if text is None:
        return
    if not isinstance(text, Mapping):
        raise bad_request("'text' must be an object.", param="text")
    if text.get("verbosity") is not None:
        request["verbosity"] = text["verbosity"]
    format_ = text.get("format")
    if format_ is None:
        return
    if not isinstance(format_, Mapping):
        raise bad_request("'text.format' must be an object.", param="text.format")
    kind = format_.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        request["response_format"] = {"type": "json_object"}
        return
    if kind != "json_schema":
        raise bad_request(
            "'text.format.type' must be 'text', 'json_object' or 'json_schema'.",
            param="text.format.type",
        )
    schema = {
        key: format_[key] for key in ("name", "schema", "description", "strict") if key in format_
    }
    if not isinstance(schema.get("name"), str) or not isinstance(schema.get("schema"), Mapping):
        raise bad_request(
            "'text.format' of type json_schema needs a 'name' and a 'schema'.", param="text.format"
        )
    request["response_format"] = {"type": "json_schema", "json_schema": schema}
