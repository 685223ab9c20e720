"""An OpenAI chat stream as Anthropic's Messages event sequence, chunk by chunk."""

from collections.abc import Mapping
from typing import Any

import orjson

from pricing import PromptTokens
from proxy.anthropic.translation.reply import (
    STOP_REASONS,
    anthropic_usage,
    message_id,
    tool_use_id,
)
from proxy.call.receipt import Receipt
from proxy.call.sse import DONE, EventSplitter, event_data
from proxy.call.tally import Tally
from proxy.openai.counts import reported_openai_counts


def _sse(kind: str, payload: dict[str, Any]) -> bytes:
    return (
        b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"
    )


class AnthropicStreamFromOpenAI(Tally):
    """Translates as it relays, and tallies what the OpenAI upstream reports and generates.

    ``message_start`` carries the gateway's count of the prompt (OpenAI reports
    usage only at the end); the closing ``message_delta`` carries the
    provider's counts, which the SDKs take as the final ones (or, if it
    reported none, what the gateway counted, off the event loop: what it
    charges), and the receipt, which is why the closing events wait for
    ``close``.
    """

    def __init__(self, *, model_name: str, encoding_model: str, prompt: PromptTokens) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._events = EventSplitter()
        self._model_name = model_name
        self._started = False
        self._closed = False
        self._block_stop: list[bytes] | None = None
        """The open block's stop event, made at the first ``close``: a keyed call asks for
        the closing events twice (its kept reply has no receipt)."""
        self._block: tuple[str, int] | None = None
        """The open content block: ("text", -1) or ("tool", OpenAI's tool-call index)."""
        self._block_count = 0
        self._finish_reason: str | None = None
        self._ending = False
        """The upstream has finished: the closing events wait for the receipt."""

    def feed(self, data: bytes) -> bytes:
        """Take OpenAI stream bytes; return the Anthropic events to send now."""
        out: list[bytes] = []
        for event in self._events.feed(data):
            out.extend(self._translate(event_data(event)))
        return b"".join(out)

    async def flush(self) -> bytes:
        out = self._translate(event_data(self._events.flush()))
        if self._finish_reason is not None:
            self._ending = True
        return b"".join(out)

    async def close(self, receipt: Receipt | None) -> bytes:
        """The closing events once the upstream finished (with ``[DONE]`` or without), the
        receipt in ``message_delta``'s usage and as a comment before ``message_stop``."""
        comment = b"" if receipt is None else receipt.comment()
        if not self._ending or (self._closed and self._block_stop is None):
            return comment
        if self._block_stop is None:
            self._closed = True
            self._block_stop = self._stop_block()
        counts = await self.final()
        stop_reason = STOP_REASONS.get(self._finish_reason or "stop", "end_turn")
        usage: dict[str, Any] = anthropic_usage(counts)
        if receipt is not None:
            usage = {**usage, **receipt.usage_fields()}
        return b"".join(
            [
                *self._block_stop,
                _sse(
                    "message_delta",
                    {
                        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                        "usage": usage,
                    },
                ),
                comment,
                _sse("message_stop", {}),
            ]
        )

    def _translate(self, chunk: Any) -> list[bytes]:
        if self._closed or self._ending:
            return []
        if chunk == DONE:
            self._ending = self._started
            return []
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            return self._fail(chunk["error"])
        out = [] if self._started else [self._message_start()]
        self._started = True
        reported = reported_openai_counts(chunk.get("usage"))
        if reported is not None:
            self.reported = reported
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
            "usage": {"input_tokens": self.prompt.exact(), "output_tokens": 0},
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
