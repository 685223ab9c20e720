"""A stream tap that relays whole events and holds its stream's end back for the receipt.

The relay settles when the upstream ends and only then sends the stream's last
bytes (``proxy.call.stream``), so those can tell the client what it paid. A tap
built on ``HeldEndTap`` sends each event once it is complete, reading it as it
passes; from the event that starts its protocol's end (the final usage, or the
end marker) it holds everything back, and ``close`` sends it with the receipt:
the figures written into the event that carries the usage, and the comment
line just before the one that ends the stream.
"""

from typing import Any

from proxy.call.receipt import Receipt
from proxy.call.sse import EventSplitter, event_data


class HeldEndTap:
    """Mixed in before a ``Tally``: its ``feed``, ``flush`` and ``close``, from three hooks."""

    def __init__(self, **tally: Any) -> None:
        super().__init__(**tally)
        self._events = EventSplitter()
        self._end: list[tuple[bytes, Any]] = []
        """The held events: as they came, and parsed."""

    def feed(self, data: bytes) -> bytes:
        """Take the upstream's bytes; return the complete events to send now."""
        return b"".join([event for event in self._events.feed(data) if self._passes(event)])

    async def flush(self) -> bytes:
        rest = self._events.flush()
        return rest if rest.strip() and self._passes(rest) else b""

    async def close(self, receipt: Receipt | None) -> bytes:
        """The held events, with the receipt when the call was settled."""
        comment = b"" if receipt is None else receipt.comment()
        out: list[bytes] = []
        for raw, data in self._end:
            if self._ends_stream(data):
                out.append(comment)
                comment = b""
            out.append(self._closing(raw, data, receipt))
        out.append(comment)
        return b"".join(out)

    def _passes(self, event: bytes) -> bool:
        if not self._end and self._passes_unread(event):
            return True
        data = event_data(event)
        if self._end or self._read_event(data):
            self._end.append((event, data))
            return False
        return True

    def _passes_unread(self, event: bytes) -> bool:
        """Whether an event before the end may pass without being parsed now (the tap then
        keeps it, to read only if it must): one that can carry only generated text."""
        return False

    def _read_event(self, data: Any) -> bool:
        """Read one event (``event_data``) as it passes; True if it starts the held end."""
        raise NotImplementedError

    def _ends_stream(self, data: Any) -> bool:
        """Whether this held event is the one the receipt comment goes just before."""
        raise NotImplementedError

    def _closing(self, raw: bytes, data: Any, receipt: Receipt | None) -> bytes:
        """A held event as it is finally sent: as it came, unless it carries the usage."""
        return raw
