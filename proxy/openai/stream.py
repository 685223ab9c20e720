"""A tap on an OpenAI server-sent-event stream as it is relayed, event by event.

It forwards the upstream's events unchanged, except the usage-only chunk that
the gateway asked for on the client's behalf (``stream_options.include_usage``)
when the client did not ask for it; it reads the reported counts, and keeps
the generated text so that an interrupted stream can still be counted.
"""

from typing import Any

from pricing import PromptTokens
from proxy.call.sse import EventSplitter, event_data
from proxy.call.tally import Tally
from proxy.openai.counts import reported_openai_counts

_DELTA_TEXT_FIELDS = ("content", "reasoning_content", "refusal")


class OpenAIStreamTap(Tally):
    def __init__(
        self, *, drop_usage_chunk: bool, encoding_model: str, prompt: PromptTokens
    ) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._drop_usage_chunk = drop_usage_chunk
        self._events = EventSplitter()

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the upstream; return the bytes to send to the client now."""
        return b"".join([event for event in self._events.feed(data) if self._keep(event)])

    async def flush(self) -> bytes:
        rest = self._events.flush()
        return rest if rest.strip() and self._keep(rest) else b""

    def _keep(self, event: bytes) -> bool:
        chunk = event_data(event)
        if not isinstance(chunk, dict):
            return True
        if chunk.get("usage"):
            self.reported = reported_openai_counts(chunk["usage"])
            if self._drop_usage_chunk and not chunk.get("choices"):
                return False
        self._collect_text(chunk.get("choices") or [])
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
