"""An Anthropic Messages answer as a Response: the plain body, or the stream event by event.

Thinking becomes a reasoning item whose ``encrypted_content`` carries the
block's signature (or, marked, a redacted block's data), so that handing the
item back on the next turn hands Claude its thinking back. ``max_tokens`` as
the stop reason ends the Response ``incomplete`` (``max_output_tokens``), a
``refusal`` ends it ``incomplete`` (``content_filter``).

The stream translator is also an ``AnthropicEventTally``, which reads each
parsed event before it is translated: the usage rules of a native Anthropic
stream (input and cache counts in ``message_start``, running output totals in
``message_delta``) are written once, and the bytes are parsed once.
"""

from collections.abc import Mapping
from typing import Any, Unpack

import orjson

from pricing import TokenCounts
from proxy.anthropic.stream import AnthropicEventTally
from proxy.responses.anthropic_request import REDACTED_THINKING_PREFIX
from proxy.responses.tools import Tools
from proxy.responses.translated_stream import StreamOptions, TranslatedStream
from proxy.responses.usage import responses_usage
from proxy.responses.writer import ResponseWriter, new_id

INCOMPLETE_REASONS = {"max_tokens": "max_output_tokens", "refusal": "content_filter"}


def response_from_anthropic(
    message: Mapping[str, Any],
    request: Mapping[str, Any],
    *,
    tools: Tools,
    model_name: str,
    usage: TokenCounts,
) -> dict[str, Any]:
    """The Response for a plain Messages answer, ``usage`` being what is charged."""
    writer = ResponseWriter(request, model=model_name)
    for index, block in enumerate(message.get("content") or []):
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            writer.text(block["text"])
        elif kind == "thinking":
            writer.reasoning(str(block.get("thinking") or ""))
            writer.reasoning_signature(str(block.get("signature") or ""))
            writer.close_reasoning()
        elif kind == "redacted_thinking":
            writer.reasoning_signature(REDACTED_THINKING_PREFIX + str(block.get("data") or ""))
            writer.close_reasoning()
        elif kind == "tool_use":
            writer.tool_call(
                index,
                call_id=str(block.get("id") or new_id("call")),
                tool=tools.called(str(block.get("name") or "")),
            )
            writer.arguments(index, orjson.dumps(block.get("input") or {}).decode())
    writer.complete(
        responses_usage(usage),
        incomplete_reason=INCOMPLETE_REASONS.get(str(message.get("stop_reason"))),
    )
    return writer.response


class ResponsesFromAnthropic(TranslatedStream, AnthropicEventTally):
    """Turns an Anthropic Messages stream into Responses events, event by event."""

    def __init__(self, request: Mapping[str, Any], **options: Unpack[StreamOptions]) -> None:
        super().__init__(request, **options)
        self._blocks: dict[object, object] = {}
        """Each open content block's type, by index: a thinking block's end ends its item."""
        self._stop_reason: str | None = None

    @property
    def _upstream_finished(self) -> bool:
        return self._stop_reason is not None

    def _translate(self, event: Any) -> list[bytes]:
        self.read(event)
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        writer = self._writer
        if kind == "message_start":
            return writer.start()
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "content_block_stop":
            ended = self._blocks.pop(event.get("index"), None)
            if ended == "thinking" or ended == "redacted_thinking":
                return writer.close_reasoning()
            return []
        if kind == "message_delta":
            delta = event.get("delta")
            if isinstance(delta, Mapping) and delta.get("stop_reason"):
                self._stop_reason = str(delta["stop_reason"])
            return []
        if kind == "message_stop":
            return self._end_when_settled()
        if kind == "error":
            error = event.get("error")
            message = error.get("message") if isinstance(error, Mapping) else None
            return writer.fail(str(message or "The upstream failed mid-stream."))
        return []

    def _block_start(self, event: Mapping[str, Any]) -> list[bytes]:
        index, block = event.get("index"), event.get("content_block")
        if not isinstance(index, int) or not isinstance(block, Mapping):
            return []
        kind = block.get("type")
        self._blocks[index] = kind
        if kind == "tool_use":
            return self._writer.tool_call(
                index,
                call_id=str(block.get("id") or new_id("call")),
                tool=self._tools.called(str(block.get("name") or "")),
            )
        if kind == "redacted_thinking":
            data = REDACTED_THINKING_PREFIX + str(block.get("data") or "")
            return self._writer.reasoning_signature(data)
        if kind == "text" and block.get("text"):
            return self._writer.text(str(block["text"]))
        return []

    def _delta(self, event: Mapping[str, Any]) -> list[bytes]:
        index, delta = event.get("index"), event.get("delta")
        if not isinstance(delta, Mapping):
            return []
        kind = delta.get("type")
        writer = self._writer
        if kind == "text_delta":
            return writer.text(str(delta.get("text") or ""))
        if kind == "thinking_delta":
            return writer.reasoning(str(delta.get("thinking") or ""))
        if kind == "signature_delta":
            return writer.reasoning_signature(str(delta.get("signature") or ""))
        if kind == "input_json_delta":
            return writer.arguments(index, str(delta.get("partial_json") or ""))
        return []

    def _complete(self, counts: TokenCounts) -> list[bytes]:
        return self._writer.complete(
            responses_usage(counts),
            incomplete_reason=INCOMPLETE_REASONS.get(self._stop_reason or ""),
        )
