"""A tap on an OpenAI server-sent-event stream as it is relayed, event by event.

It forwards the upstream's events unchanged, except the usage-only chunk that
the gateway asked for on the client's behalf (``stream_options.include_usage``)
when the client did not ask for it; it reads the reported counts, and keeps
the generated text so that an interrupted stream can still be counted.

The stream's end (the chunk with the usage, then ``data: [DONE]``) waits for
the settlement: the receipt goes into that usage object when the client asked
for usage, and as a comment line just before ``[DONE]``.
"""

from typing import Any

import orjson

from proxy.call.receipt import Receipt
from proxy.call.sse import DONE, EventSplitter, event_data
from proxy.call.tally import Tally
from proxy.openai.counts import reported_openai_counts

_DELTA_TEXT_FIELDS = ("content", "reasoning_content", "refusal")


class OpenAIStreamTap(Tally):
    def __init__(
        self, *, drop_usage_chunk: bool, encoding_model: str, prompt_tokens_estimate: int
    ) -> None:
        super().__init__(
            encoding_model=encoding_model, prompt_tokens_estimate=prompt_tokens_estimate
        )
        self._drop_usage_chunk = drop_usage_chunk
        self._events = EventSplitter()
        self._end: list[bytes | dict[str, Any]] = []
        """The events from the usage chunk (kept as its JSON, to write out again) on, held
        back for the receipt."""

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the upstream; return the bytes to send to the client now."""
        return b"".join([event for event in self._events.feed(data) if self._keep(event)])

    def flush(self) -> bytes:
        rest = self._events.flush()
        return rest if rest.strip() and self._keep(rest) else b""

    def close(self, receipt: Receipt | None) -> bytes:
        out: list[bytes] = []
        comment = b"" if receipt is None else receipt.comment()
        for event in self._end:
            if isinstance(event, dict):
                out.append(self._usage_event(event, receipt))
                continue
            if event_data(event) == DONE:
                out.append(comment)
                comment = b""
            out.append(event)
        out.append(comment)
        return b"".join(out)

    def _usage_event(self, chunk: dict[str, Any], receipt: Receipt | None) -> bytes:
        """The usage-only chunk, with the receipt in its usage; none if the client did not ask
        for usage (the gateway did, on its behalf)."""
        if self._drop_usage_chunk:
            return b""
        if receipt is not None:
            chunk = {**chunk, "usage": {**chunk["usage"], **receipt.usage_fields()}}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _keep(self, event: bytes) -> bool:
        chunk = event_data(event)
        if self._end or chunk == DONE:
            self._end.append(event)
            return False
        if not isinstance(chunk, dict):
            return True
        choices = chunk.get("choices")
        self._collect_text(choices or [])
        if chunk.get("usage"):
            self.reported = reported_openai_counts(chunk["usage"])
            if not choices:
                self._end.append(chunk)
                return False
        return True

    def _collect_text(self, choices: list[Any]) -> None:
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            self.content_events += 1
            text = choice.get("text")
            if isinstance(text, str):
                self._text_parts.append(text)
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            for key in _DELTA_TEXT_FIELDS:
                value = delta.get(key)
                if isinstance(value, str):
                    self._text_parts.append(value)
            for tool_call in delta.get("tool_calls") or []:
                function = tool_call.get("function") if isinstance(tool_call, dict) else None
                if isinstance(function, dict):
                    for key in ("name", "arguments"):
                        value = function.get(key)
                        if isinstance(value, str):
                            self._text_parts.append(value)
