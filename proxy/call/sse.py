"""The one server-sent-event parser: complete events out of a byte stream, and their data.

Upstreams send events in pieces cut anywhere; an event is complete at its
blank line (``\\n\\n`` or ``\\r\\n\\r\\n``). Every stream tap reads its events
through ``EventSplitter`` and ``event_data``, whichever protocol it speaks.
"""

import re
from collections.abc import Mapping
from typing import Any

import orjson

EVENT_END = re.compile(rb"\r?\n\r?\n")
MAX_PENDING_BYTES = 4 * 1024 * 1024
"""An event larger than this without a separator is not SSE; fail rather than grow."""

DONE = "[DONE]"
"""``event_data`` of OpenAI's closing ``data: [DONE]`` event."""
_DONE_BYTES = b"[DONE]"


class EventSplitter:
    """Splits a byte stream into its complete events, each with its closing blank line."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The events ``data`` completes; what follows the last separator waits for more."""
        pending = self._pending + data if self._pending else data
        if b"\r" in pending:
            events: list[bytes] = []
            start = 0
            for match in EVENT_END.finditer(pending):
                events.append(pending[start : match.end()])
                start = match.end()
            self._pending = pending[start:]
        else:
            # The usual line ending, found at C speed: the pattern tries every byte.
            *complete, self._pending = pending.split(b"\n\n")
            events = [event + b"\n\n" for event in complete]
        if len(self._pending) > MAX_PENDING_BYTES:
            raise ValueError("upstream event stream has an event larger than 4 MiB")
        return events

    def flush(self) -> bytes:
        """What is left when the stream ends: a last event without its blank line, or nothing."""
        rest, self._pending = self._pending, b""
        return rest


def event_data(event: bytes) -> Any:
    """An event's data as JSON, ``DONE`` for OpenAI's end marker, or None.

    None stands for an event without data (``ping``, comments) and for data
    that is not JSON; a tap skips both. Several ``data:`` lines are one value,
    joined by newlines, as the SSE format says.
    """
    lines = [line[5:].strip() for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    data = lines[0] if len(lines) == 1 else b"\n".join(lines)
    if data == _DONE_BYTES:
        return DONE
    try:
        return orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return None


def typed_event(payload: Mapping[str, Any]) -> bytes:
    """An event named by its payload's ``type`` (Anthropic's and the Responses API's style)."""
    return (
        b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
    )
