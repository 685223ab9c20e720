"""Anthropic Messages ⇄ OpenAI Chat Completions, for models whose upstream speaks OpenAI.

One org token then works from either SDK against any served model. Written by
hand rather than with litellm's ``LiteLLMAnthropicMessagesAdapter``: that
adapter works on litellm's own response objects, not on the wire bytes this
gateway relays, and importing it loads all of litellm (~190 MB and ~3 s per
worker) on the first such request. The subset here is what the Messages API
and an OpenAI chat upstream share: text, images, tools and tool results,
system prompts, stop sequences, streaming. A content block or tool outside it
is refused with a 400 rather than dropped; top-level settings OpenAI has no
place for (``thinking``, ``top_k``, ``metadata``, ``cache_control``…) are left
out, as they only tune how the reply is made. The output bound goes as
``max_completion_tokens``, the only one OpenAI's reasoning models accept.
"""

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from pricing import InvalidTokenCounts, TokenCounts, count_text_tokens, counts_from_openai
from proxy.anthropic_stream import DONE, SseEvents
from proxy.errors import ApiError, bad_request, error_body

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_COPIED = ("temperature", "top_p")
_IGNORED_BLOCKS = ("thinking", "redacted_thinking")
_ANTHROPIC_PATH = "/v1/messages"


def _unsupported(what: str) -> ApiError:
    return bad_request(
        f"{what} is not supported for this model: its upstream speaks OpenAI's format.",
        code="unsupported_for_model",
    )


# Requests


def openai_request(body: Mapping[str, Any], provider_model: str) -> dict[str, Any]:
    """The Chat Completions body for a Messages request (validated by the route)."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _plain_text(system, "system")})
    for message in body["messages"]:
        messages.extend(_openai_messages(message))
    request: dict[str, Any] = {
        "model": provider_model,
        "messages": messages,
        "max_completion_tokens": body["max_tokens"],
    }
    request.update({name: body[name] for name in _COPIED if body.get(name) is not None})
    if body.get("stop_sequences"):
        request["stop"] = body["stop_sequences"]
    if body.get("tools"):
        request["tools"] = [_openai_tool(tool) for tool in body["tools"]]
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


# Responses


def message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def tool_use_id() -> str:
    """For a tool call the upstream gave no id: Anthropic's clients need one to answer it."""
    return f"toolu_{uuid.uuid4().hex[:24]}"


def anthropic_usage(usage: TokenCounts) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "output_tokens": usage.output_tokens,
    }


def reported_openai_usage(usage: object) -> TokenCounts | None:
    """An OpenAI usage object as token counts, or None when absent or unreadable."""
    if not isinstance(usage, Mapping):
        return None
    try:
        return counts_from_openai(usage)
    except InvalidTokenCounts:
        return None


def first_message(body: object) -> Mapping[str, Any]:
    """The first choice's message of a Chat Completions body ({} when there is none)."""
    choices = body.get("choices") if isinstance(body, Mapping) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        message = choices[0].get("message")
        if isinstance(message, Mapping):
            return message
    return {}


def reply_text(message: Mapping[str, Any]) -> str:
    """What the reply generated, as text to count when the upstream reported no usage."""
    parts = [message["content"]] if isinstance(message.get("content"), str) else []
    for call in message.get("tool_calls") or []:
        if isinstance(call, Mapping):
            parts.append(orjson.dumps(call.get("function") or {}).decode())
    return "".join(parts)


def anthropic_message(
    body: Mapping[str, Any], model_name: str, usage: TokenCounts
) -> dict[str, Any]:
    """The Messages response for a Chat Completions response."""
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
                "input": _tool_input(function.get("arguments")),
            }
        )
    choices = body.get("choices") or [{}]
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model_name,
        "content": content,
        "stop_reason": _STOP_REASONS.get(str(choices[0].get("finish_reason")), "end_turn"),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


def _tool_input(arguments: object) -> dict[str, Any]:
    """Tool arguments as an object; a model's malformed JSON is kept under ``_raw``."""
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
    return error_body(ApiError(status, message), _ANTHROPIC_PATH)


# Streams


def _sse(kind: str, payload: dict[str, Any]) -> bytes:
    return (
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"
    )


class AnthropicStreamFromOpenAI:
    """Turns an OpenAI chat stream into Anthropic's event sequence, chunk by chunk.

    ``message_start`` carries the gateway's prompt estimate (OpenAI reports
    usage only at the end); the closing ``message_delta`` carries the
    provider's counts, which the SDKs take as the final ones.
    """

    def __init__(
        self, *, model_name: str, encoding_model: str, prompt_tokens_estimate: int
    ) -> None:
        self._events = SseEvents()
        self._model_name = model_name
        self._encoding_model = encoding_model
        self._prompt_tokens_estimate = prompt_tokens_estimate
        self._text_parts: list[str] = []
        self._started = False
        self._closed = False
        self._block: tuple[str, int] | None = None
        """The open content block: ("text", -1) or ("tool", OpenAI's tool-call index)."""
        self._block_count = 0
        self._finish_reason: str | None = None
        self.final_usage: TokenCounts | None = None
        self.error: Mapping[str, Any] | None = None
        """The upstream's mid-stream error chunk, when it ended the stream with one."""
        self.content_events = 0

    @property
    def generated_text(self) -> str:
        return "".join(self._text_parts)

    def counted_usage(self) -> TokenCounts:
        return TokenCounts(
            input_tokens=self._prompt_tokens_estimate,
            output_tokens=count_text_tokens(self.generated_text, self._encoding_model),
        )

    def feed(self, data: bytes) -> bytes:
        """Take OpenAI stream bytes; return the Anthropic events to send now."""
        out: list[bytes] = []
        for payload in self._events.feed(data):
            out.extend(self._translate(payload))
        return b"".join(out)

    def flush(self) -> bytes:
        """The closing events, if the upstream ended without ``[DONE]`` but had finished."""
        out: list[bytes] = []
        for payload in self._events.flush():
            out.extend(self._translate(payload))
        if self._finish_reason is not None and not self._closed:
            out.extend(self._close())
        return b"".join(out)

    def _translate(self, chunk: Any) -> list[bytes]:
        if self._closed:
            return []
        if chunk == DONE:
            return self._close() if self._started else []
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            return self._fail(chunk["error"])
        out = [] if self._started else [self._message_start()]
        self._started = True
        usage = reported_openai_usage(chunk.get("usage"))
        if usage is not None:
            self.final_usage = usage
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return out
        delta = choice.get("delta")
        if isinstance(delta, dict):
            out.extend(self._content(delta))
        if choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])
            out.extend(self._stop_block())
        return out

    def _message_start(self) -> bytes:
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model_name,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._prompt_tokens_estimate, "output_tokens": 0},
        }
        return _sse("message_start", {"message": message})

    def _content(self, delta: Mapping[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._block is None or self._block[0] != "text":
                out.extend(self._start_block(("text", -1), {"type": "text", "text": ""}))
            out.append(self._delta({"type": "text_delta", "text": text}))
            self._text_parts.append(text)
        for call in delta.get("tool_calls") or []:
            if not isinstance(call, Mapping):
                continue
            raw_function = call.get("function")
            function: Mapping[str, Any] = raw_function if isinstance(raw_function, Mapping) else {}
            key = ("tool", int(call.get("index") or 0))
            if self._block != key:
                name = str(function.get("name") or "")
                tool_id = str(call.get("id") or tool_use_id())
                block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
                out.extend(self._start_block(key, block))
                self._text_parts.append(name)
            arguments = function.get("arguments")
            if isinstance(arguments, str) and arguments:
                out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
                self._text_parts.append(arguments)
        return out

    def _start_block(self, key: tuple[str, int], block: dict[str, Any]) -> list[bytes]:
        out = self._stop_block()
        self._block = key
        out.append(
            _sse("content_block_start", {"index": self._block_count, "content_block": block})
        )
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        self.content_events += 1
        return _sse("content_block_delta", {"index": self._block_count, "delta": delta})

    def _stop_block(self) -> list[bytes]:
        if self._block is None:
            return []
        self._block = None
        index = self._block_count
        self._block_count += 1
        return [_sse("content_block_stop", {"index": index})]

    def _fail(self, error: Mapping[str, Any]) -> list[bytes]:
        """An error the upstream sent mid-stream, passed on as Anthropic's ``error`` event."""
        self._closed = True
        self.error = error
        message = str(error.get("message") or "The upstream failed mid-stream.")
        return [_sse("error", {"error": {"type": "api_error", "message": message}})]

    def _close(self) -> list[bytes]:
        self._closed = True
        usage = self.final_usage or self.counted_usage()
        stop_reason = _STOP_REASONS.get(self._finish_reason or "stop", "end_turn")
        return [
            *self._stop_block(),
            _sse(
                "message_delta",
                {
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": anthropic_usage(usage),
                },
            ),
            _sse("message_stop", {}),
        ]
