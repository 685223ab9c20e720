"""A tap on an OpenAI server-sent-event stream as it is relayed, event by event.

It forwards the upstream's events unchanged, except the usage-only chunk that
the gateway asked for on the client's behalf (``stream_options.include_usage``)
when the client did not ask for it; it reads the reported counts, and keeps
the generated text so that an interrupted stream can still be counted.

Only the chunks that can change the call's ending are parsed as they pass:
those that report usage, and ``[DONE]``. A chunk whose ``usage`` is absent or
null can carry nothing but generated text, which is needed only if the stream
ends without reported counts, so it passes unparsed and is kept to be read
then (or once 64 KiB of them wait, so that a long stream keeps its text, not
its events). Parsing every chunk cost about a third of the tap's time on a
20-chunk stream.

The stream's end (the chunk with the usage, then ``data: [DONE]``) waits for
the settlement: the receipt goes into that usage object when the client asked
for usage, and as a comment line just before ``[DONE]``.
"""

import re
from typing import Any

import orjson

from pricing import PromptTokens, TokenCounts
from proxy.call.held_end import HeldEndTap
from proxy.call.metered_call import Ending
from proxy.call.receipt import Receipt
from proxy.call.sse import DONE, event_data
from proxy.call.tally import Tally
from proxy.openai.counts import reported_openai_counts

_DELTA_TEXT_FIELDS = ("content", "reasoning_content", "refusal")
_USAGE_KEY = re.compile(rb'"usage"\s*:\s*(null)?')
"""A ``usage`` key in a chunk and whether its value is null. Quotes inside JSON strings are
escaped, so ``"usage"`` followed by a colon is the key, never generated text."""
UNREAD_LIMIT_BYTES = 64 * 1024


class OpenAIStreamTap(HeldEndTap, Tally):
    def __init__(
        self, *, drop_usage_chunk: bool, encoding_model: str, prompt: PromptTokens
    ) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._drop_usage_chunk = drop_usage_chunk
        self._unread: list[bytes] = []
        self._unread_bytes = 0

    def _passes_unread(self, event: bytes) -> bool:
        if b"[DONE]" in event:
            return False
        usage_keys = event.count(b'"usage"')
        if (
            usage_keys != event.count(b'"usage":null')  # OpenAI's own spelling, found at C speed
            and any(usage.group(1) is None for usage in _USAGE_KEY.finditer(event))
        ):
            return False
        self._unread.append(event)
        self._unread_bytes += len(event)
        if self._unread_bytes > UNREAD_LIMIT_BYTES:
            self._read_unread()
        return True

    def _read_unread(self) -> None:
        """The text of the chunks that passed unparsed, in their order."""
        for event in self._unread:
            data = event_data(event)
            if isinstance(data, dict):
                self._collect_text(data.get("choices") or [])
        self._unread.clear()
        self._unread_bytes = 0

    def _read_event(self, data: Any) -> bool:
        """The usage-only chunk (which reports the counts) and ``[DONE]`` start the end."""
        if data == DONE:
            return True
        if not isinstance(data, dict):
            return False
        choices = data.get("choices")
        usage = data.get("usage")
        if usage:
            self.reported = reported_openai_counts(usage)
        if self.reported is None:
            self._read_unread()
        self._collect_text(choices or [])
        return bool(usage) and not choices

    @property
    def generated_text(self) -> str:
        self._read_unread()
        return super().generated_text

    async def owed(self, ending: Ending) -> TokenCounts | None:
        if self.reported is None:
            self._read_unread()
        return await super().owed(ending)

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
