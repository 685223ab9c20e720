"""A tap on a Responses event stream relayed unchanged from an upstream that speaks it.

The bytes go to the client as they come, but for the first event: it is held
until it is complete, because it is ``response.created``, which names the
response, and the gateway records which org owns that id before the client
can see it (``NativeExchange.before_stream``). Beside the bytes the tap reads
the provider's usage from the final ``response.completed`` (or
``response.incomplete`` / ``response.failed``), and the text, reasoning and
tool-call arguments generated so far, so that a stream cut short can still be
counted.
"""

from collections.abc import Mapping
from typing import Any

from pricing import PromptTokens
from proxy.call.sse import EventSplitter, event_data
from proxy.call.tally import Tally
from proxy.responses.usage import reported_token_counts

FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
GENERATED_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
    }
)


def response_text(body: Mapping[str, Any]) -> str:
    """What a plain Response generated, as text to count when it reports no usage."""
    parts: list[str] = []
    for item in body.get("output") or []:
        if not isinstance(item, Mapping):
            continue
        for key in ("name", "arguments", "input"):
            if isinstance(item.get(key), str):
                parts.append(item[key])
        for field in ("content", "summary"):
            for part in item.get(field) or []:
                if isinstance(part, Mapping):
                    text = part.get("text", part.get("refusal"))
                    if isinstance(text, str):
                        parts.append(text)
    return "".join(parts)


class ResponsesStreamTap(Tally):
    """Reads a native Responses stream as it passes: its id, its usage, what it generated."""

    def __init__(self, *, encoding_model: str, prompt: PromptTokens) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._events = EventSplitter()
        self.response_id: str | None = None
        self._held: bytes | None = b""
        """What came before the first complete event (None once that has gone out)."""

    def feed(self, data: bytes) -> bytes:
        """Read the events completed by ``data``; hand ``data`` back to be sent as it is."""
        events = self._events.feed(data)
        for event in events:
            self._read(event_data(event))
        if self._held is not None:
            self._held += data
            if not events:
                return b""
            data, self._held = self._held, None
        return data

    async def flush(self) -> bytes:
        self._read(event_data(self._events.flush()))
        held, self._held = self._held, None
        return held or b""

    def _read(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind in GENERATED_DELTAS:
            delta = event.get("delta")
            if isinstance(delta, str):
                self.content_events += 1
                self._text_parts.append(delta)
            return
        response = event.get("response")
        if kind == "response.created" and isinstance(response, Mapping):
            response_id = response.get("id")
            self.response_id = response_id if isinstance(response_id, str) else None
        elif kind in FINAL_EVENTS and isinstance(response, Mapping):
            self.reported = reported_token_counts(response.get("usage"))
            if kind == "response.failed":
                error = response.get("error")
                self.error = error if isinstance(error, Mapping) else {}
        elif kind == "error":
            self.error = event
