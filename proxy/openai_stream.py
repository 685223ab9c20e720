"""A tap on an OpenAI server-sent-event stream as it is relayed, event by event.

It forwards the upstream's bytes unchanged, except the usage-only chunk that
the gateway asked for on the client's behalf (``stream_options.include_usage``)
when the client did not ask for it; it keeps the reported usage, and the
generated text so that an interrupted stream can still be counted.
"""

import re
from typing import Any

import orjson

_EVENT_END = re.compile(rb"\r?\n\r?\n")
MAX_PENDING_BYTES = 4 * 1024 * 1024
"""An event larger than this without a separator is not SSE; fail rather than grow."""


class OpenAIStreamTap:
    def __init__(self, *, drop_usage_chunk: bool) -> None:
        self._drop_usage_chunk = drop_usage_chunk
        self._pending = b""
        self._text_parts: list[str] = []
        self.usage: dict[str, Any] | None = None
        self.content_events = 0

    @property
    def generated_text(self) -> str:
        return "".join(self._text_parts)

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the upstream; return the bytes to send to the client now."""
        self._pending += data
        out: list[bytes] = []
        start = 0
        for match in _EVENT_END.finditer(self._pending):
            event = self._pending[start : match.end()]
            start = match.end()
            if self._keep(event):
                out.append(event)
        self._pending = self._pending[start:]
        if len(self._pending) > MAX_PENDING_BYTES:
            raise ValueError("upstream event stream has an event larger than 4 MiB")
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest if rest.strip() and self._keep(rest) else b""

    def _keep(self, event: bytes) -> bool:
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if not data or data == b"[DONE]":
                continue
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(chunk, dict):
                continue
            if chunk.get("usage"):
                self.usage = chunk["usage"]
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
            for key in ("content", "reasoning_content", "refusal"):
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
