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

import orjson

from proxy.anthropic.counts import reported_anthropic_counts
from proxy.call.receipt import Receipt
from proxy.call.sse import EventSplitter, event_data
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

    def __init__(self, *, encoding_model: str, prompt_tokens_estimate: int) -> None:
        super().__init__(
            encoding_model=encoding_model, prompt_tokens_estimate=prompt_tokens_estimate
        )
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


class AnthropicStreamTap(AnthropicEventTally):
    def __init__(self, *, encoding_model: str, prompt_tokens_estimate: int) -> None:
        super().__init__(
            encoding_model=encoding_model, prompt_tokens_estimate=prompt_tokens_estimate
        )
        self._events = EventSplitter()
        self._end: list[bytes | dict[str, Any]] = []
        """The events from ``message_delta`` (kept as its JSON, to write out again) on."""

    def feed(self, data: bytes) -> bytes:
        """Read the events completed by ``data``; return those to send now, as they came."""
        return b"".join([event for event in self._events.feed(data) if self._keep(event)])

    def flush(self) -> bytes:
        rest = self._events.flush()
        return rest if rest.strip() and self._keep(rest) else b""

    def close(self, receipt: Receipt | None) -> bytes:
        out: list[bytes] = []
        comment = b"" if receipt is None else receipt.comment()
        for event in self._end:
            if isinstance(event, dict):
                if receipt is not None:
                    event = {**event, "usage": {**event["usage"], **receipt.usage_fields()}}
                out.append(b"event: message_delta\ndata: " + orjson.dumps(event) + b"\n\n")
                continue
            if _is_message_stop(event):
                out.append(comment)
                comment = b""
            out.append(event)
        out.append(comment)
        return b"".join(out)

    def _keep(self, event: bytes) -> bool:
        if self._end:
            self._end.append(event)
            return False
        data = event_data(event)
        self.read(data)
        if (
            isinstance(data, dict)
            and data.get("type") == "message_delta"
            and isinstance(data.get("usage"), dict)
        ):
            self._end.append(data)
            return False
        if _is_message_stop(event):
            self._end.append(event)
            return False
        return True


def _is_message_stop(event: bytes) -> bool:
    data = event_data(event)
    return isinstance(data, dict) and data.get("type") == "message_stop"
