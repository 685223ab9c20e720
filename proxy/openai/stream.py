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

from pricing import PromptTokens
from proxy.call.held_end import HeldEndTap
from proxy.call.receipt import Receipt
from proxy.call.sse import DONE
from proxy.call.tally import Tally
from proxy.openai.counts import reported_openai_counts

_DELTA_TEXT_FIELDS = ("content", "reasoning_content", "refusal")


class OpenAIStreamTap(HeldEndTap, Tally):
    def __init__(
        self, *, drop_usage_chunk: bool, encoding_model: str, prompt: PromptTokens
    ) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._drop_usage_chunk = drop_usage_chunk

    def _read_event(self, data: Any) -> bool:
        """The usage-only chunk (which reports the counts) and ``[DONE]`` start the end."""
        if data == DONE:
            return True
        if not isinstance(data, dict):
            return False
        choices = data.get("choices")
        self._collect_text(choices or [])
        if data.get("usage"):
            self.reported = reported_openai_counts(data["usage"])
            return not choices
        return False

    def _ends_stream(self, data: Any) -> bool:
        return bool(data == DONE)

    def _closing(self, raw: bytes, data: Any, receipt: Receipt | None) -> bytes:
        """The usage-only chunk carries the receipt too; none if the client did not ask for
        usage (the gateway did, on its behalf)."""
        if not isinstance(data, dict) or not data.get("usage"):
            return raw
        if self._drop_usage_chunk:
            return b""
        if receipt is None:
            return raw
        usage = {**data["usage"], **receipt.usage_fields()}
        return b"data: " + orjson.dumps({**data, "usage": usage}) + b"\n\n"

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
