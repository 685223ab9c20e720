"""Relay an upstream event stream to the client and end its metered call exactly once.

A stream can end four ways: the upstream finishes, the upstream fails midway,
the client disconnects while the gateway waits for the upstream, or the
client disconnects while the gateway is sending (or before it started). The
relay generator sees only the first three; the response's own ``__call__``
sees the fourth. Both report to one idempotent ``_finish``, which closes the
upstream and settles what the tap says is owed (or releases the hold) in
tracked background tasks, so neither a cancelled handler nor an unstarted
generator can leak a hold or an in-flight slot.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import httpx
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from pricing import TokenCounts
from proxy.call.metered_call import Ending, MeteredCall
from proxy.upstream.network import UpstreamResponse

logger = logging.getLogger("spu.stream")


class StreamTap(Protocol):
    """Reads a protocol's events as they pass (a ``Tally``); returns the bytes to send now."""

    def feed(self, data: bytes) -> bytes: ...

    async def flush(self) -> bytes:
        """The last bytes, once the upstream has ended (they may wait for a count)."""

    async def owed(self, ending: Ending) -> TokenCounts | None: ...


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
            async for piece in self._upstream.aiter_bytes():
                out = self._tap.feed(piece)
                if out:
                    if self._before_first_bytes is not None:
                        await self._first_bytes_go()
                    yield out
            tail = await self._tap.flush()
            if tail:
                if self._before_first_bytes is not None:
                    await self._first_bytes_go()
                yield tail
            ending = Ending.OK
        except (httpx.HTTPError, ValueError) as error:
            # Headers are sent: the client sees the stream end early, without [DONE].
            logger.warning("upstream stream of %s broke: %r", self._metered.request_id, error)
            ending = Ending.UPSTREAM_INTERRUPTED
        finally:
            self._finish(ending)

    async def _first_bytes_go(self) -> None:
        assert self._before_first_bytes is not None
        work, self._before_first_bytes = self._before_first_bytes, None
        pending = work()
        if pending is not None:
            await pending

    def _finish(self, ending: Ending) -> None:
        if self._finished:
            return
        self._finished = True
        self._metered.meter.endings.spawn(self._upstream.aclose())
        self._metered.end_detached(self._tap.owed(ending), status=ending)
