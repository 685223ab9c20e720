"""What the two translated streams (from Chat Completions, from Anthropic Messages) share.

Each takes the upstream's bytes as they come, splits them into events, and
answers every event at once with the Responses events it completes, written
by one ``ResponseWriter``. At the end of the upstream's bytes the response is
completed if the upstream said it had finished, and failed otherwise: a
client such as Codex must never be left without a final event.

Each is a ``Tally`` (the one usage rule): the closing event tells the client
``final()``, the counts it is charged, and waits for the settlement so that its
usage carries the receipt too (with a comment line just before it). When the
upstream did not report its counts, ``final()`` counts what it generated off the
event loop.
"""

from collections.abc import Mapping
from typing import Any, TypedDict, Unpack

from pricing import PromptTokens, TokenCounts
from proxy.call.receipt import Receipt
from proxy.call.sse import EventSplitter, event_data
from proxy.call.tally import Tally
from proxy.responses.tools import Tools
from proxy.responses.usage import final_event_with_receipt
from proxy.responses.writer import ResponseWriter

CUT_SHORT = "The upstream ended the stream before it finished."


class StreamOptions(TypedDict):
    tools: Tools
    """Maps the upstream's tool calls back to the client's tools."""
    model_name: str
    encoding_model: str
    prompt: PromptTokens
    """With ``encoding_model``, what counts a stream that reports no usage."""


class TranslatedStream(Tally):
    def __init__(self, request: Mapping[str, Any], **options: Unpack[StreamOptions]) -> None:
        super().__init__(encoding_model=options["encoding_model"], prompt=options["prompt"])
        self._events = EventSplitter()
        self._writer = ResponseWriter(request, model=options["model_name"])
        self._tools = options["tools"]
        self._ending = False
        """The upstream has finished: the closing events wait for the receipt."""
        self._closing: list[bytes] | None = None
        """The closing events, made at the first ``close``: a keyed call asks for them twice
        (its kept reply has no receipt)."""

    @property
    def response_id(self) -> str:
        """The id of the Response the client is given (the gateway mints it)."""
        response_id: str = self._writer.response["id"]
        return response_id

    def feed(self, data: bytes) -> bytes:
        """Take upstream stream bytes; return the Responses events to send now."""
        return self._translate_all([event_data(event) for event in self._events.feed(data)])

    async def flush(self) -> bytes:
        """The end of the upstream's bytes: complete the response (at ``close``), or fail it
        if unfinished."""
        out = self._translate_all([event_data(self._events.flush())])
        if self._writer.finished or self._ending:
            return out
        if self._upstream_finished:
            self._ending = True
            return out
        return out + b"".join(self._writer.fail(CUT_SHORT))

    async def close(self, receipt: Receipt | None) -> bytes:
        comment = b"" if receipt is None else receipt.comment()
        if not self._ending or (self._writer.finished and self._closing is None):
            return comment
        if self._closing is None:
            self._closing = self._complete(await self.final())
        *items_done, final = self._closing
        sent = self._writer.final_event
        if receipt is not None and sent is not None:
            final = final_event_with_receipt(sent, receipt) or final
        return b"".join([*items_done, comment, final])

    def _end_when_settled(self) -> list[bytes]:
        """The upstream has finished: the closing events wait for ``close``."""
        self._ending = True
        return []

    def _translate_all(self, payloads: list[Any]) -> bytes:
        out: list[bytes] = []
        for payload in payloads:
            if self._writer.finished or self._ending:
                break
            out.extend(self._translate(payload))
        return b"".join(out)

    @property
    def _upstream_finished(self) -> bool:
        """True once the upstream has said why it stopped (a finish or stop reason)."""
        raise NotImplementedError

    def _translate(self, payload: Any) -> list[bytes]:
        raise NotImplementedError

    def _complete(self, counts: TokenCounts) -> list[bytes]:
        """The closing events, ``response.completed`` (or ``.incomplete``) last."""
        raise NotImplementedError
