"""A tap on an Anthropic Messages event stream as it is relayed.

The upstream's bytes go to the client unchanged and at once; the tap reads
each complete event beside them for the usage the provider reports (input and
cache counts in ``message_start``, cumulative counts in ``message_delta``) and
keeps the generated text, thinking and tool-input JSON, so that a stream cut
short can still be counted.
"""

import re
from collections.abc import Mapping
from typing import Any

import orjson

from pricing import InvalidTokenCounts, TokenCounts, count_text_tokens, counts_from_anthropic

_EVENT_END = re.compile(rb"\r?\n\r?\n")
MAX_PENDING_BYTES = 4 * 1024 * 1024
"""An event larger than this without a separator is not SSE; fail rather than grow."""

_DELTA_TEXT_FIELDS = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
}
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


DONE = "[DONE]"
"""The payload of OpenAI's closing ``data: [DONE]`` event."""


class SseEvents:
    """Splits a server-sent-event byte stream into the payloads of its complete events.

    A payload is the event's JSON data, or ``DONE``; events without data, or
    whose data is not JSON, are skipped (``ping`` and comments carry nothing).
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[Any]:
        self._pending += data
        payloads: list[Any] = []
        start = 0
        for match in _EVENT_END.finditer(self._pending):
            payloads.extend(_payload(self._pending[start : match.start()]))
            start = match.end()
        self._pending = self._pending[start:]
        if len(self._pending) > MAX_PENDING_BYTES:
            raise ValueError("upstream event stream has an event larger than 4 MiB")
        return payloads

    def flush(self) -> list[Any]:
        """The last event, when the stream ended without its closing blank line."""
        rest, self._pending = self._pending, b""
        return _payload(rest)


def _payload(event: bytes) -> list[Any]:
    data = b"\n".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))
    if data == b"[DONE]":
        return [DONE]
    try:
        return [orjson.loads(data)] if data else []
    except orjson.JSONDecodeError:
        return []


class AnthropicStreamTap:
    """Watches an Anthropic stream; ``final_usage`` or ``counted_usage()`` says what it cost."""

    def __init__(self, *, encoding_model: str, prompt_tokens_estimate: int) -> None:
        self._events = SseEvents()
        self._encoding_model = encoding_model
        self._prompt_tokens_estimate = prompt_tokens_estimate
        self._reported: dict[str, int] = {}
        self._text_parts: list[str] = []
        self.delta_usage_seen = False
        self.error: Mapping[str, Any] | None = None
        """The upstream's ``error`` event, when it ended the stream with one."""
        self.content_events = 0

    @property
    def generated_text(self) -> str:
        return "".join(self._text_parts)

    def feed(self, data: bytes) -> bytes:
        """Read the events completed by ``data``; hand ``data`` back to be sent as it is."""
        for payload in self._events.feed(data):
            self._read(payload)
        return data

    def flush(self) -> bytes:
        for payload in self._events.flush():
            self._read(payload)
        return b""

    @property
    def final_usage(self) -> TokenCounts | None:
        """The provider's own count, once ``message_delta`` has given the output total."""
        if not self.delta_usage_seen:
            return None
        try:
            return counts_from_anthropic(self._reported)
        except InvalidTokenCounts:
            return None

    def counted_usage(self) -> TokenCounts:
        """For a stream cut short: the reported input, and output as counted from what was sent.

        The provider's running output count is taken when it is the higher one.
        """
        reported_input = {
            name: self._reported.get(name, 0) for name in _USAGE_FIELDS if name != "output_tokens"
        }
        if "input_tokens" not in self._reported:
            reported_input["input_tokens"] = self._prompt_tokens_estimate
        counted_output = count_text_tokens(self.generated_text, self._encoding_model)
        return TokenCounts(
            input_tokens=reported_input["input_tokens"],
            output_tokens=max(counted_output, self._reported.get("output_tokens", 0)),
            cache_creation_input_tokens=reported_input["cache_creation_input_tokens"],
            cache_read_input_tokens=reported_input["cache_read_input_tokens"],
        )

    def _read(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self._merge_usage(message.get("usage"))
        elif kind == "message_delta":
            if isinstance(event.get("usage"), dict):
                self.delta_usage_seen = True
                self._merge_usage(event["usage"])
        elif kind == "content_block_start":
            block = event.get("content_block")
            if isinstance(block, dict) and isinstance(block.get("name"), str):
                self._text_parts.append(block["name"])
        elif kind == "content_block_delta":
            self.content_events += 1
            delta = event.get("delta")
            if isinstance(delta, dict):
                text = delta.get(_DELTA_TEXT_FIELDS.get(str(delta.get("type")), ""))
                if isinstance(text, str):
                    self._text_parts.append(text)
        elif kind == "error":
            error = event.get("error")
            self.error = error if isinstance(error, dict) else {}

    def _merge_usage(self, usage: object) -> None:
        """Counts in ``message_delta`` are running totals: a present one replaces the last."""
        if not isinstance(usage, dict):
            return
        for name in _USAGE_FIELDS:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._reported[name] = value
