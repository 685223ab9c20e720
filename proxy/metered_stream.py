"""Relay an upstream event stream to the client and end its metered call exactly once.

A stream can end four ways: the upstream finishes, the upstream fails midway,
the client disconnects while the gateway waits for the upstream, or the
client disconnects while the gateway is sending (or before it started). The
relay generator sees only the first three; the response's own ``__call__``
sees the fourth. Both report to one idempotent ``_finish``, which closes the
upstream and settles (or releases) the hold in a tracked background task, so
neither a cancelled handler nor an unstarted generator can leak a hold or an
in-flight slot.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import httpx
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from pricing import TokenCounts
from proxy.call.metered_call import MeteredCall
from proxy.upstream.network import UpstreamResponse

logger = logging.getLogger("spu.stream")

STATUS_OK = "ok"
STATUS_CLIENT_DISCONNECTED = "client_disconnected"
STATUS_UPSTREAM_INTERRUPTED = "upstream_interrupted"


class StreamTap(Protocol):
    """Reads events as they pass; returns the bytes to send the client now."""

    def feed(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


UsageOf = Callable[[str], TokenCounts | None]
"""Given how the stream ended, what to debit; ``None`` releases the hold (nothing produced)."""


class MeteredStreamResponse(StreamingResponse):
    def __init__(
        self,
        metered: MeteredCall,
        upstream: UpstreamResponse,
        tap: StreamTap,
        usage_of: UsageOf,
        *,
        headers: dict[str, str],
    ) -> None:
        self._metered = metered
        self._upstream = upstream
        self._tap = tap
        self._usage_of = usage_of
        self._finished = False
        super().__init__(self._relay(), media_type="text/event-stream", headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream_until_disconnect(receive, send)
        finally:
            self._finish(STATUS_CLIENT_DISCONNECTED)

    async def _stream_until_disconnect(self, receive: Receive, send: Send) -> None:
        """Send the stream; a client that disconnects meanwhile cancels the sending.

        Starlette does the same (for servers older than ASGI 2.4, uvicorn among
        them) with an anyio task group, which cost ~50 µs a stream here, a
        twentieth of a streamed call's time in the gateway; one plain watcher
        task costs a tenth of that. The watcher can only act while the sending
        waits, so once the sending has returned it is cancelled before it can.
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
        status = STATUS_CLIENT_DISCONNECTED
        try:
            async for piece in self._upstream.aiter_bytes():
                out = self._tap.feed(piece)
                if out:
                    yield out
            tail = self._tap.flush()
            if tail:
                yield tail
            status = STATUS_OK
        except (httpx.HTTPError, ValueError) as error:
            # Headers are sent: the client sees the stream end early, without [DONE].
            logger.warning("upstream stream of %s broke: %r", self._metered.request_id, error)
            status = STATUS_UPSTREAM_INTERRUPTED
        finally:
            self._finish(status)

    def _finish(self, status: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._metered.meter.endings.spawn(self._upstream.aclose())
        try:
            usage = self._usage_of(status)
        except Exception:
            logger.exception("could not work out the usage of %s", self._metered.request_id)
            usage = None
        if usage is None:
            self._metered.release_detached()
        else:
            self._metered.settle_detached(usage, status=status)
