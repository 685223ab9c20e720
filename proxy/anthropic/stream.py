"""A tap on an Anthropic Messages event stream as it is relayed.

The upstream's events go to the client unchanged, each as soon as it is
complete; the tap reads them for the counts the provider reports (input and
cache counts in ``message_start``, cumulative counts in ``message_delta``)
and keeps the generated text, thinking and tool-input JSON, so that a stream
cut short can still be counted.

The end (``message_delta`` with the final counts, then ``message_stop``)
waits for the settlement: the receipt goes into ``message_delta``'s usage and
as a comment line just before ``message_stop``.
"""

from typing import Any

from pricing import PromptTokens
from proxy.anthropic.counts import reported_anthropic_counts
from proxy.call.held_end import HeldEndTap
from proxy.call.receipt import Receipt
from proxy.call.sse import typed_event
from proxy.call.tally import Tally

_DELTA_TEXT_FIELDS = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
}
_COUNT_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


class AnthropicEventTally(Tally):
    """Reads Messages events one at a time, already parsed: the counts and the generated text.

    ``AnthropicStreamTap`` feeds it a native stream's events; the Responses
    translation of a Messages stream is one too, so both read Anthropic's
    events by the same rules.
    """

    def __init__(self, *, encoding_model: str, prompt: PromptTokens) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._running: dict[str, int] = {}
        self.running = self._running
        self._final_counts_sent = False

    def read(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if isinstance(message, dict):
                self._merge_counts(message.get("usage"))
        elif kind == "message_delta":
            if isinstance(event.get("usage"), dict):
                self._final_counts_sent = True
                self._merge_counts(event["usage"])
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

    def _merge_counts(self, usage: object) -> None:
        """Counts in ``message_delta`` are running totals: a present one replaces the last.

        The provider's counts are final once ``message_delta`` has given the output total.
        """
        if not isinstance(usage, dict):
            return
        for name in _COUNT_FIELDS:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._running[name] = value
        if self._final_counts_sent:
            self.reported = reported_anthropic_counts(self._running)


class AnthropicStreamTap(HeldEndTap, AnthropicEventTally):
    def _read_event(self, data: Any) -> bool:
        """``message_delta`` with the final counts starts the end (then ``message_stop``)."""
        self.read(data)
        return isinstance(data, dict) and (
            data.get("type") == "message_stop"
            or (data.get("type") == "message_delta" and isinstance(data.get("usage"), dict))
        )

    def _ends_stream(self, data: Any) -> bool:
        return isinstance(data, dict) and data.get("type") == "message_stop"

    def _closing(self, raw: bytes, data: Any, receipt: Receipt | None) -> bytes:
        if receipt is None or not isinstance(data, dict) or data.get("type") != "message_delta":
            return raw
        event = {**data, "usage": {**data["usage"], **receipt.usage_fields()}}
        return typed_event(event)
