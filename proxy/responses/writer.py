"""One Response object and its event stream, written from what a model produced, as it comes.

The translations from Chat Completions and from Anthropic Messages both feed a
``ResponseWriter`` the same few things — text, a refusal, reasoning, the start
and argument pieces of a tool call, the end — and it answers each with the
Responses events to send now, in the order and shape OpenAI sends them:
``response.created`` and ``response.in_progress``; per output item
``response.output_item.added``, its parts and deltas, ``…done`` events and
``response.output_item.done``; then ``response.completed`` (or
``response.incomplete`` when the output bound or a filter cut it, or
``response.failed``). Codex takes its final message from
``response.output_item.done`` and retries a stream that ends without
``response.completed``, so the writer never leaves an item open at the end.

A plain (non-streamed) answer goes through the same writer, its events unused,
so a translated answer has one shape whether streamed or not. Only a custom
tool's input is held back until the call ends: the upstream streams it as the
JSON of a function call, and only the whole JSON says what the text is.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from proxy.ids import random_hex
from proxy.responses.tools import FunctionTool

ECHOED_FIELDS = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "prompt_cache_key",
    "reasoning",
    "safety_identifier",
    "service_tier",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "truncation",
    "user",
)
"""Request fields a Response object repeats, as OpenAI's does."""
_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
}


def wants_encrypted_reasoning(request: Mapping[str, Any]) -> bool:
    include = request.get("include")
    return isinstance(include, list) and "reasoning.encrypted_content" in include


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_hex(32)}"


def sse(event: Mapping[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


@dataclass
class _Item:
    """An output item being written: its index, its JSON so far, and its open part."""

    index: int
    item: dict[str, Any]
    part_kind: str | None = None
    pieces: list[str] = field(default_factory=list)
    """The open content part's text (or a tool call's arguments) so far."""
    tool: FunctionTool | None = None


class ResponseWriter:
    def __init__(self, request: Mapping[str, Any], *, model: str) -> None:
        """``request`` is the client's: the Response echoes it, and its ``include`` says
        whether reasoning items carry their ``encrypted_content``."""
        echoed = {name: request[name] for name in ECHOED_FIELDS if request.get(name) is not None}
        self.response: dict[str, Any] = {
            "id": new_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "background": False,
            "completed_at": None,
            "error": None,
            "incomplete_details": None,
            **_DEFAULTS,
            **echoed,
            "model": model,
            "output": [],
            "usage": None,
        }
        self._include_encrypted_reasoning = wants_encrypted_reasoning(request)
        self._sequence = 0
        self._message: _Item | None = None
        self._reasoning: _Item | None = None
        self._calls: dict[object, _Item] = {}
        self._started = False
        self.finished = False
        self.final_event: dict[str, Any] | None = None
        """``response.completed`` (or ``.incomplete``) as sent, once ``complete`` has run: the
        receipt is added to it without parsing back what may be the whole answer."""

    @property
    def output(self) -> list[dict[str, Any]]:
        output: list[dict[str, Any]] = self.response["output"]
        return output

    def _next_event(self, kind: str, **payload: Any) -> dict[str, Any]:
        event = {"type": kind, **payload, "sequence_number": self._sequence}
        self._sequence += 1
        return event

    def _event(self, kind: str, **payload: Any) -> bytes:
        return sse(self._next_event(kind, **payload))

    def start(self) -> list[bytes]:
        """``response.created`` and ``response.in_progress``, once: the upstream has answered."""
        if self._started:
            return []
        self._started = True
        return [
            self._event("response.created", response=self.response),
            self._event("response.in_progress", response=self.response),
        ]

    def _add_item(
        self, item: dict[str, Any], tool: FunctionTool | None = None
    ) -> tuple[_Item, bytes]:
        opened = _Item(len(self.output), item, tool=tool)
        self.output.append(item)
        return opened, self._event(
            "response.output_item.added", output_index=opened.index, item=item
        )

    # Message text and refusals

    def text(self, delta: str) -> list[bytes]:
        return self._message_delta("output_text", delta) if delta else []

    def refusal(self, delta: str) -> list[bytes]:
        return self._message_delta("refusal", delta) if delta else []

    def _message_delta(self, kind: str, delta: str) -> list[bytes]:
        if self.finished:
            return []
        out = self.start() + self.close_reasoning()
        if self._message is None:
            item = {
                "id": new_id("msg"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self._message, added = self._add_item(item)
            out.append(added)
        message = self._message
        if message.part_kind != kind:
            out.extend(self._close_part(message))
            message.part_kind = kind
            out.append(
                self._event(
                    "response.content_part.added",
                    item_id=message.item["id"],
                    output_index=message.index,
                    content_index=len(message.item["content"]),
                    part=_part(kind, ""),
                )
            )
        message.pieces.append(delta)
        name = "response.output_text.delta" if kind == "output_text" else "response.refusal.delta"
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        out.append(
            self._event(
                name,
                item_id=message.item["id"],
                output_index=message.index,
                content_index=len(message.item["content"]),
                delta=delta,
                **extra,
            )
        )
        return out

    def _close_part(self, item: _Item) -> list[bytes]:
        if item.part_kind is None:
            return []
        kind, text = item.part_kind, "".join(item.pieces)
        item.part_kind, item.pieces = None, []
        index = len(item.item["content"])
        part = _part(kind, text)
        item.item["content"].append(part)
        ids = {"item_id": item.item["id"], "output_index": item.index, "content_index": index}
        if kind == "output_text":
            done = self._event("response.output_text.done", **ids, text=text, logprobs=[])
        elif kind == "refusal":
            done = self._event("response.refusal.done", **ids, refusal=text)
        else:
            done = self._event("response.reasoning_text.done", **ids, text=text)
        return [done, self._event("response.content_part.done", **ids, part=part)]

    def _close_message(self) -> list[bytes]:
        if self._message is None:
            return []
        message, self._message = self._message, None
        return self._close_part(message) + self._item_done(message)

    def _item_done(self, item: _Item) -> list[bytes]:
        item.item["status"] = "completed"
        return [self._event("response.output_item.done", output_index=item.index, item=item.item)]

    # Reasoning

    def reasoning(self, delta: str) -> list[bytes]:
        """The model's reasoning text, as a ``reasoning`` item with ``reasoning_text`` content."""
        if self.finished or not delta:
            return []
        out = self._open_reasoning()
        reasoning = self._reasoning
        assert reasoning is not None
        ids = {
            "item_id": reasoning.item["id"],
            "output_index": reasoning.index,
            "content_index": len(reasoning.item["content"]),
        }
        if reasoning.part_kind is None:
            reasoning.part_kind = "reasoning_text"
            out.append(
                self._event("response.content_part.added", **ids, part=_part("reasoning_text", ""))
            )
        reasoning.pieces.append(delta)
        out.append(self._event("response.reasoning_text.delta", **ids, delta=delta))
        return out

    def reasoning_signature(self, encrypted_content: str) -> list[bytes]:
        """What lets the upstream read its reasoning back on a later turn (a signature)."""
        if self.finished:
            return []
        out = self._open_reasoning()
        if self._include_encrypted_reasoning and self._reasoning is not None:
            previous = self._reasoning.item.get("encrypted_content") or ""
            self._reasoning.item["encrypted_content"] = previous + encrypted_content
        return out

    def _open_reasoning(self) -> list[bytes]:
        out = self.start() + self._close_message()
        if self._reasoning is None:
            item = {"id": new_id("rs"), "type": "reasoning", "summary": [], "content": []}
            self._reasoning, added = self._add_item(item)
            out.append(added)
        return out

    def close_reasoning(self) -> list[bytes]:
        """End the reasoning item: what follows is a new one (one per Anthropic thinking block)."""
        if self._reasoning is None:
            return []
        reasoning, self._reasoning = self._reasoning, None
        return self._close_part(reasoning) + self._item_done(reasoning)

    # Tool calls

    def tool_call(self, key: object, *, call_id: str, tool: FunctionTool) -> list[bytes]:
        """A call starts; ``key`` names it in later ``arguments`` (the upstream's index)."""
        if self.finished or key in self._calls:
            return []
        out = self.start() + self._close_message() + self.close_reasoning()
        item: dict[str, Any]
        if tool.kind == "custom":
            item = {
                "id": new_id("ctc"),
                "type": "custom_tool_call",
                "call_id": call_id,
                "input": "",
            }
        else:
            item = {
                "id": new_id("fc"),
                "type": "function_call",
                "call_id": call_id,
                "arguments": "",
            }
        item = {**item, "status": "in_progress", "name": tool.name}
        if tool.namespace is not None:
            item["namespace"] = tool.namespace
        self._calls[key], added = self._add_item(item, tool)
        out.append(added)
        return out

    def arguments(self, key: object, delta: str) -> list[bytes]:
        call = self._calls.get(key)
        if self.finished or call is None or not delta:
            return []
        call.pieces.append(delta)
        if call.item["type"] == "custom_tool_call":
            return []
        return [
            self._event(
                "response.function_call_arguments.delta",
                item_id=call.item["id"],
                output_index=call.index,
                delta=delta,
            )
        ]

    def _close_call(self, call: _Item) -> list[bytes]:
        arguments = "".join(call.pieces)
        ids = {"item_id": call.item["id"], "output_index": call.index}
        if call.item["type"] == "custom_tool_call":
            text = _custom_input(arguments)
            call.item["input"] = text
            out = [
                self._event("response.custom_tool_call_input.delta", **ids, delta=text),
                self._event("response.custom_tool_call_input.done", **ids, input=text),
            ]
        else:
            call.item["arguments"] = arguments
            out = [
                self._event(
                    "response.function_call_arguments.done",
                    **ids,
                    name=call.item["name"],
                    arguments=arguments,
                )
            ]
        return out + self._item_done(call)

    # The end

    def complete(
        self, usage: Mapping[str, Any], *, incomplete_reason: str | None = None
    ) -> list[bytes]:
        """Close every open item, then ``response.completed`` (or ``response.incomplete``)."""
        if self.finished:
            return []
        out = self.start() + self._close_all()
        self.finished = True
        self.response["usage"] = dict(usage)
        if incomplete_reason is None:
            self.response["status"] = "completed"
            self.response["completed_at"] = int(time.time())
            self.final_event = self._next_event("response.completed", response=self.response)
        else:
            self.response["status"] = "incomplete"
            self.response["incomplete_details"] = {"reason": incomplete_reason}
            self.final_event = self._next_event("response.incomplete", response=self.response)
        out.append(sse(self.final_event))
        return out

    def fail(self, message: str, *, code: str = "server_error") -> list[bytes]:
        """The upstream failed mid-answer: ``response.failed`` with what was produced so far."""
        if self.finished:
            return []
        out = self.start() + self._close_all()
        self.finished = True
        self.response["status"] = "failed"
        self.response["error"] = {"code": code, "message": message}
        out.append(self._event("response.failed", response=self.response))
        return out

    def _close_all(self) -> list[bytes]:
        out = self._close_message() + self.close_reasoning()
        for call in self._calls.values():
            if call.item["status"] == "in_progress":
                out.extend(self._close_call(call))
        return out

    @property
    def generated_text(self) -> str:
        """Everything the model wrote, closed items and open ones, for counting its tokens."""
        parts: list[str] = []
        for item in self.output:
            for part in item.get("content") or []:
                parts.append(str(part.get("text") or part.get("refusal") or ""))
            for key in ("name", "arguments", "input"):
                if isinstance(item.get(key), str):
                    parts.append(item[key])
        for open_item in (self._message, self._reasoning, *self._calls.values()):
            if open_item is not None and open_item.item.get("status") == "in_progress":
                parts.extend(open_item.pieces)
        return "".join(parts)


def _part(kind: str, text: str) -> dict[str, Any]:
    if kind == "output_text":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    if kind == "refusal":
        return {"type": "refusal", "refusal": text}
    return {"type": "reasoning_text", "text": text}


def _custom_input(arguments: str) -> str:
    """A custom tool's text from the JSON the upstream called its function with."""
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    text = parsed.get("input") if isinstance(parsed, dict) else None
    return text if isinstance(text, str) else arguments
