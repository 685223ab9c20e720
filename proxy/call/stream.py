"""Relay an upstream event stream to the client and end its metered call exactly once.

A stream can end four ways: the upstream finishes, the upstream fails midway,
the client disconnects while the gateway waits for the upstream, or the
client disconnects while the gateway is sending (or before it started). The
relay generator sees only the first three; the response's own ``__call__``
sees the fourth.

When the upstream has ended (finished or failed) and the client is still
there, the relay settles before it sends the stream's last bytes, which the
tap held back, so they can carry the receipt (``proxy.call.receipt``): the
tap writes it into its protocol's closing events. The settlement is tracked
and shielded, so a client that leaves meanwhile does not stop it. Every other
ending goes to one idempotent ``_finish``, which settles what the tap says is
owed (or releases the hold) in a tracked background task, so neither a
cancelled handler nor an unstarted generator can leak a hold or an in-flight
slot.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import httpx
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ledger import LedgerError
from pricing import TokenCounts
from proxy.call.metered_call import Ending, MeteredCall
from proxy.call.receipt import Receipt
from proxy.upstream.network import UpstreamResponse

logger = logging.getLogger("spu.stream")


class StreamTap(Protocol):
    """Reads a protocol's events as they pass (a ``Tally``); returns the bytes to send now.

    It holds back the stream's closing events (the final usage and the end
    marker) until ``close``, which sends them with the receipt.
    """

    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...

    def owed(self, ending: Ending) -> TokenCounts | None: ...

    def close(self, receipt: Receipt | None) -> bytes:
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
    ) -> None:
        self._metered = metered
        self._upstream = upstream
        self._tap = tap
        self._before_first_bytes: Callable[[], Awaitable[None] | None] | None = before_first_bytes
        """Work the client must not outrun (see ``Exchange.before_stream``); None once run."""
        self._finished = False
        super().__init__(self._relay(), media_type="text/event-stream", headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream_until_disconnect(receive, send)
        finally:
            self._finish(Ending.CLIENT_DISCONNECTED)

    async def _stream_until_disconnect(self, receive: Receive, send: Send) -> None:
        """Send the stream; a client that disconnects meanwhile cancels the sending.

        Starlette does the same (for servers older than ASGI 2.4, uvicorn among
        them) with an anyio task group, which costs more per stream than one
        plain watcher task. The watcher can only act while the sending waits,
        so once the sending has returned it is cancelled before it can.
        """
        sending = asyncio.current_task()
        assert sending is not None
        disconnected = False

        async def watch() -> None:
            nonlocal disconnected
            await self.listen_for_disconnect(receive)
            disconnected = True
            sending.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await self.stream_response(send)
        except asyncio.CancelledError:
            # Cancelled by the watcher alone: the client is gone, which is an ending.
            if not disconnected or sending.uncancel() > 0:
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
                        yield out
                tail = self._tap.flush()
                ending = Ending.OK
            except (httpx.HTTPError, ValueError) as error:
                # Headers are sent: the client sees the stream end early, without [DONE].
                logger.warning("upstream stream of %s broke: %r", self._metered.request_id, error)
                tail = b""
                ending = Ending.UPSTREAM_INTERRUPTED
            if tail:
                if self._before_first_bytes is not None:
                    await self._first_bytes_go()
                yield tail
            closing = self._tap.close(await self._settle(ending))
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

    def _owed(self, ending: Ending) -> TokenCounts | None:
        self._finished = True
        self._metered.meter.endings.spawn(self._upstream.aclose())
        try:
            return self._tap.owed(ending)
        except Exception:
            logger.exception("could not work out what %s owes", self._metered.request_id)
            return None

    async def _settle(self, ending: Ending) -> Receipt | None:
        """End the call while the client waits for the last bytes: the receipt, or None when
        nothing was owed (released) or the ledger could not be reached."""
        counts = self._owed(ending)
        if counts is None:
            self._metered.release_detached()
            return None
        try:
            return await self._metered.settle_receipt(counts, status=ending)
        except LedgerError:
            logger.exception("stream %s ends without its receipt", self._metered.request_id)
            return None

    def _finish(self, ending: Ending) -> None:
        if self._finished:
            return
        counts = self._owed(ending)
        if counts is None:
            self._metered.release_detached()
        else:
            self._metered.settle_detached(counts, status=ending)
