"""A Messages request as the Chat Completions request an OpenAI-format upstream takes.

The subset is what the two APIs share: text, images, tools and tool results,
system prompts, stop sequences, streaming. A content block or tool outside it
is refused with a 400 rather than dropped; top-level settings OpenAI has no
place for (``thinking``, ``top_k``, ``metadata``, ``cache_control``,
``context_management``, ``output_config``…) and keys of a message other than
its role and content are left out, as they only tune how the reply is made.
The output bound goes as ``max_completion_tokens``, the only one OpenAI's
reasoning models accept.

What Claude Code sends by default is read too:

- a ``system`` message in the conversation (its mid-conversation system
  prompt) is folded, in order, into the one leading system message: every
  OpenAI-format backend takes a leading system message, while some (vLLM chat
  templates, some litellm providers) refuse one later in the list;
- a tool with ``defer_loading`` is left out: a deferred tool is not shown to
  the model until a tool search loads it, which an OpenAI upstream cannot do.
"""

from collections.abc import Mapping
from typing import Any

import orjson

from proxy.errors import ApiError, bad_request

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_COPIED = ("temperature", "top_p")
_IGNORED_BLOCKS = ("thinking", "redacted_thinking")


def _unsupported(what: str) -> ApiError:
    return bad_request(
        f"{what} is not supported for this model: its upstream speaks OpenAI's format.",
        code="unsupported_for_model",
    )


def openai_request(body: Mapping[str, Any], provider_model: str) -> dict[str, Any]:
    """The Chat Completions body for a Messages request (validated by the route)."""
    system = [_plain_text(body["system"], "system")] if body.get("system") else []
    messages: list[dict[str, Any]] = []
    for message in body["messages"]:
        if isinstance(message, Mapping) and message.get("role") == "system":
            system.append(_plain_text(message.get("content"), "messages"))
        else:
            messages.extend(_openai_messages(message))
    if system:
        messages.insert(0, {"role": "system", "content": "\n".join(system)})
    request: dict[str, Any] = {
        "model": provider_model,
        "messages": messages,
        "max_completion_tokens": body["max_tokens"],
    }
    request.update({name: body[name] for name in _COPIED if body.get(name) is not None})
    if body.get("stop_sequences"):
        request["stop"] = body["stop_sequences"]
    tools = [
        _openai_tool(tool)
        for tool in body.get("tools") or ()
        if not (isinstance(tool, Mapping) and tool.get("defer_loading") is True)
    ]
    if tools:
        request["tools"] = tools
    _apply_tool_choice(body.get("tool_choice"), request)
    if body.get("stream") is True:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def _plain_text(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"'{where}' must be a string or an array of text blocks.", param=where)
    texts: list[str] = []
    for block in content:
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise _unsupported(f"A non-text block in '{where}'")
        texts.append(str(block.get("text", "")))
    return "\n".join(texts)


def _openai_messages(message: object) -> list[dict[str, Any]]:
    if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
        raise bad_request("Each message needs a role of 'user' or 'assistant'.", param="messages")
    content = message.get("content")
    if message["role"] == "assistant":
        return [_assistant_message(content)]
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise bad_request("A message's content must be a string or an array.", param="messages")
    # OpenAI wants each tool result as its own message straight after the tool
    # call; Anthropic puts them first in the next user turn, so they lead here.
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, Mapping) and block.get("type") == "tool_result":
            text, images = _tool_result(block)
            tool_messages.append(
                {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text}
            )
            parts.extend(images)
        else:
            parts.append(_user_part(block))
    if parts:
        tool_messages.append({"role": "user", "content": parts})
    return tool_messages


def _user_part(block: object) -> dict[str, Any]:
    if not isinstance(block, Mapping):
        raise bad_request("Content blocks must be objects.", param="messages")
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": str(block.get("text", ""))}
    if kind == "image":
        return _image_part(block.get("source"))
    raise _unsupported(f"A '{kind}' content block")


def _image_part(source: object) -> dict[str, Any]:
    if isinstance(source, Mapping) and source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(source, Mapping) and source.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": str(source.get("url"))}}
    raise _unsupported("An image that is not base64 or a URL")


def _tool_result(block: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A tool result's text, and its images (an OpenAI tool message holds text only)."""
    content = block.get("content")
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise bad_request("A tool_result's content must be a string or an array.")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for item in content:
        part = _user_part(item)
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            images.append(part)
    return "\n".join(texts), images


def _assistant_message(content: object) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise bad_request("A message's content must be a string or an array.", param="messages")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": str(block.get("id", "")),
                    "type": "function",
                    "function": {
                        "name": str(block.get("name", "")),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind not in _IGNORED_BLOCKS:
            raise _unsupported(f"A '{kind}' block in an assistant message")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _openai_tool(tool: object) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type", "custom") != "custom":
        kind = tool.get("type") if isinstance(tool, Mapping) else tool
        raise _unsupported(f"The server tool '{kind}'")
    function: dict[str, Any] = {
        "name": tool.get("name"),
        "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
    }
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _apply_tool_choice(choice: object, request: dict[str, Any]) -> None:
    if not isinstance(choice, Mapping):
        return
    kind = choice.get("type")
    if kind == "tool":
        request["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in _TOOL_CHOICES:
        request["tool_choice"] = _TOOL_CHOICES[str(kind)]
    if choice.get("disable_parallel_tool_use") is True and request.get("tools"):
        request["parallel_tool_calls"] = False
