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

import orjson

from proxy.call.receipt import Receipt
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

    def __init__(self, *, encoding_model: str, prompt_tokens_estimate: int) -> None:
        super().__init__(
            encoding_model=encoding_model, prompt_tokens_estimate=prompt_tokens_estimate
        )
        self._events = EventSplitter()
        self.response_id: str | None = None
        self._end: list[bytes | dict[str, Any]] = []
        """The final event (kept as its JSON, to write out again) and what follows it."""

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
                response = event["response"]
                if receipt is not None and isinstance(response.get("usage"), dict):
                    usage = {**response["usage"], **receipt.usage_fields()}
                    event = {**event, "response": {**response, "usage": usage}}
                out.append(comment)
                comment = b""
                out.append(
                    b"event: "
                    + str(event["type"]).encode()
                    + b"\ndata: "
                    + orjson.dumps(event)
                    + b"\n\n"
                )
                continue
            out.append(event)
        out.append(comment)
        return b"".join(out)

    def _keep(self, event: bytes) -> bool:
        if self._end:
            self._end.append(event)
            return False
        data = event_data(event)
        self._read(data)
        if (
            isinstance(data, dict)
            and data.get("type") in FINAL_EVENTS
            and isinstance(data.get("response"), Mapping)
        ):
            self._end.append(data)
            return False
        return True

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
