"""A tap on a Responses event stream relayed unchanged from an upstream that speaks it.

The events go to the client as they come, each once it is complete: the first
is ``response.created``, which names the response, and the gateway records
which org owns that id before the client can see it
(``NativeExchange.before_stream``). Beside them the tap reads the provider's
usage from the final ``response.completed`` (or ``response.incomplete`` /
``response.failed``), and the text, reasoning and tool-call arguments
generated so far, so that a stream cut short can still be counted. The final
event waits for the settlement: the receipt goes into its ``response.usage``
and as a comment line just before it.
"""

from collections.abc import Mapping
from typing import Any

from pricing import PromptTokens
from proxy.call.held_end import HeldEndTap
from proxy.call.receipt import Receipt
from proxy.call.tally import Tally
from proxy.responses.usage import final_event_with_receipt, reported_token_counts

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


class ResponsesStreamTap(HeldEndTap, Tally):
    """Reads a native Responses stream as it passes: its id, its usage, what it generated."""

    def __init__(self, *, encoding_model: str, prompt: PromptTokens) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self.response_id: str | None = None

    def _read_event(self, data: Any) -> bool:
        """The final event (``response.completed``, ``.incomplete`` or ``.failed``) is the end."""
        self._read(data)
        return _is_final(data)

    def _ends_stream(self, data: Any) -> bool:
        return _is_final(data)

    def _closing(self, raw: bytes, data: Any, receipt: Receipt | None) -> bytes:
        if receipt is None or not _is_final(data):
            return raw
        return final_event_with_receipt(data, receipt) or raw

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


def _is_final(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("type") in FINAL_EVENTS
        and isinstance(data.get("response"), Mapping)
    )
