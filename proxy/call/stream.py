"""Relay an upstream event stream to the client and end its metered call exactly once.

A stream can end five ways: the upstream finishes, the upstream fails midway,
the client disconnects while the gateway waits for the upstream, the client
disconnects while the gateway is sending (or before it started), or the
call's total deadline passes. The relay generator sees the first three; the
response's own ``__call__`` sees the last two.

When the upstream has ended (finished or failed) and the client is still
there, the relay settles before it sends the stream's last bytes, which the
tap held back, so they can carry the receipt (``proxy.call.receipt``): the
tap writes it into its protocol's closing events. The settlement is tracked
and shielded, so a client that leaves meanwhile does not stop it. Every other
ending goes to one idempotent ``_finish``, which closes the upstream and
settles what the tap says is owed (or releases the hold) in a tracked
background task, so neither a cancelled handler nor an unstarted generator
can leak a hold or an in-flight slot.

A stream cut at its deadline is charged for what it streamed, and its client
gets a closing error event in its protocol's shape and a complete response,
so the connection stays usable.

A keyed call (``Idempotency-Key``) keeps its events as they went out, its
closing events without the receipt: the reply is kept in the settlement that
makes the receipt, and a replay, which costs nothing, is no receipt of a charge.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Protocol

import httpx
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ledger import LedgerError, StoredReply
from pricing import TokenCounts
from proxy.call.idempotency import ReplyCapture
from proxy.call.metered_call import Ending, MeteredCall
from proxy.call.receipt import Receipt
from proxy.errors import error_event
from proxy.upstream.network import UpstreamResponse

logger = logging.getLogger("spu.stream")

EVENT_STREAM = "text/event-stream"


class StreamTap(Protocol):
    """Reads a protocol's events as they pass (a ``Tally``); returns the bytes to send now.

    It holds back the stream's closing events (the final usage and the end
    marker) until ``close``, which sends them with the receipt.
    """

    def feed(self, data: bytes) -> bytes: ...

    async def flush(self) -> bytes:
        """The last bytes, once the upstream has ended (they may wait for a count)."""

    async def owed(self, ending: Ending) -> TokenCounts | None: ...

    async def close(self, receipt: Receipt | None) -> bytes:
        """The closing events held back, with the receipt when the call was settled."""


class MeteredStreamResponse(StreamingResponse):
    def __init__(
        self,
        metered: MeteredCall,
        upstream: UpstreamResponse,
        tap: StreamTap,
        *,
        headers: dict[str, str],
        before_first_bytes: Callable[[], Awaitable[None] | None],
        capture: ReplyCapture | None = None,
    ) -> None:
        self._metered = metered
        self._upstream = upstream
        self._tap = tap
        self._before_first_bytes: Callable[[], Awaitable[None] | None] | None = before_first_bytes
        """Work the client must not outrun (see ``Exchange.before_stream``); None once run."""
        self._capture = capture
        """A keyed call's events as they go out, kept with its settlement."""
        self._finished = False
        self._cut: Ending | None = None
        """Why the watcher cut the sending short: the client left, or the deadline passed."""
        self._path = ""
        self._closing = b""
        """The error event that ends a stream cut at its deadline."""
        super().__init__(self._relay(), media_type=EVENT_STREAM, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._path = scope["path"]
        try:
            await self._stream_until_cut(receive, send)
            if self._cut is Ending.DEADLINE_EXCEEDED:
                self._finish(Ending.DEADLINE_EXCEEDED)
                await send(
                    {"type": "http.response.body", "body": self._closing, "more_body": False}
                )
        finally:
            self._finish(Ending.CLIENT_DISCONNECTED)

    async def _stream_until_cut(self, receive: Receive, send: Send) -> None:
        """Send the stream; a client that disconnects meanwhile, or the call's deadline,
        cancels the sending.

        Starlette does the same for disconnects (for servers older than ASGI 2.4,
        uvicorn among them) with an anyio task group, which costs more per stream
        than one plain watcher task, and the watcher's one timeout serves the
        deadline too. The watcher can only act while the sending waits, so once
        the sending has returned it is cancelled before it can.
        """
        sending = asyncio.current_task()
        assert sending is not None

        async def watch() -> None:
            try:
                async with asyncio.timeout_at(self._metered.deadline):
                    await self.listen_for_disconnect(receive)
                self._cut = Ending.CLIENT_DISCONNECTED
            except TimeoutError:
                self._cut = Ending.DEADLINE_EXCEEDED
            sending.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            # Cancelled by the watcher alone: the client is gone or time is up, an ending.
            if self._cut is None or sending.uncancel() > 0:
                raise
        finally:
            watcher.cancel()

    async def _relay(self) -> AsyncIterator[bytes]:
        ending = Ending.CLIENT_DISCONNECTED
        try:
            try:
                async for piece in self._upstream.aiter_bytes():
                    out = self._tap.feed(piece)
                    if out:
                        if self._before_first_bytes is not None:
                            await self._first_bytes_go()
                        self._sent(out)
                        yield out
                tail = await self._tap.flush()
                ending = Ending.OK
            except (httpx.HTTPError, ValueError) as error:
                # Headers are sent: the client sees the stream end early, without [DONE].
                logger.warning("upstream stream of %s broke: %r", self._metered.request_id, error)
                tail = b""
                ending = Ending.UPSTREAM_INTERRUPTED
            except Exception:
                # A tap that fails on what the upstream sent ends the stream the same way, so
                # the response still completes (and its connection stays open).
                logger.exception("relaying the stream of %s failed", self._metered.request_id)
                tail = b""
                ending = Ending.UPSTREAM_INTERRUPTED
            if tail:
                if self._before_first_bytes is not None:
                    await self._first_bytes_go()
                self._sent(tail)
                yield tail
            closing = await self._tap.close(await self._settle(ending))
            if closing:
                if self._before_first_bytes is not None:
                    await self._first_bytes_go()
                yield closing
        finally:
            self._finish(ending)

    async def _first_bytes_go(self) -> None:
        assert self._before_first_bytes is not None
        work, self._before_first_bytes = self._before_first_bytes, None
        pending = work()
        if pending is not None:
            await pending

    def _sent(self, data: bytes) -> None:
        if self._capture is not None:
            self._capture.add(data)

    def _end(self, ending: Ending) -> Ending:
        """Mark the stream ended and close the upstream; returns how it ended."""
        self._finished = True
        if self._cut is Ending.DEADLINE_EXCEEDED:
            # The cut may reach the relay first, as a cancellation it takes for a disconnect.
            ending = Ending.DEADLINE_EXCEEDED
            self._closing = error_event(
                self._metered.meter.past_deadline("what it streamed is charged"), self._path
            )
            self._sent(self._closing)
        self._metered.meter.endings.spawn(self._upstream.aclose())
        return ending

    async def _settle(self, ending: Ending) -> Receipt | None:
        """End the call while the client waits for the last bytes: the receipt, or None when
        nothing was owed (released) or the ledger could not be reached.

        Tracked and shielded, from working out what is owed (a count may run in a
        thread) to the debit, so a client that leaves meanwhile stops none of it.
        """
        ending = self._end(ending)
        return await asyncio.shield(self._metered.meter.endings.spawn(self._receipt(ending)))

    async def _receipt(self, ending: Ending) -> Receipt | None:
        reply = None if self._capture is None else partial(self._kept_reply, with_end=True)
        try:
            result = await self._metered.end(self._tap.owed(ending), status=ending, reply=reply)
        except LedgerError:
            logger.exception("stream %s ends without its receipt", self._metered.request_id)
            return None
        return None if result is None else Receipt.of(self._metered.request_id, result)

    async def _kept_reply(self, *, with_end: bool) -> StoredReply:
        """The events sent, as a keyed call keeps them; ``with_end``: and the closing events,
        as they were before the receipt went in (a stream ending with its client there)."""
        assert self._capture is not None
        if with_end:
            self._capture.add(await self._tap.close(None))
        return self._capture.reply(EVENT_STREAM)

    def _finish(self, ending: Ending) -> None:
        if self._finished:
            return
        ending = self._end(ending)
        reply = None if self._capture is None else partial(self._kept_reply, with_end=False)
        self._metered.end_detached(self._tap.owed(ending), status=ending, reply=reply)
