"""Real providers over HTTP: one aiohttp session, responses shaped like httpx's.

Why aiohttp here, when the local upstreams (demo, litellm) are httpx
transports: on this path httpx costs about four times aiohttp's CPU per
request, and its connection pool checks every pooled connection's socket on
each request, so at 32 concurrent calls it managed ~300 requests/s where
aiohttp did ~4,000 (same fake upstream, same machine). That was most of the
gateway's own cost. Callers still see one interface: ``UpstreamResponse``
(httpx's names, which ``httpx.Response`` already has) and httpx's exception
types, into which aiohttp's are translated here, at the edge.
"""

from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp
import httpx

MAX_CONNECTIONS = 1000
DNS_CACHE_TTL_S = 300


class UpstreamResponse(Protocol):
    """What relays use of an upstream response; ``httpx.Response`` has exactly this."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def aread(self) -> bytes: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


AIOHTTP_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What aiohttp raises when a request fails (its read timeouts are TimeoutError subclasses)."""


def httpx_error(error: aiohttp.ClientError | TimeoutError) -> httpx.TransportError:
    """aiohttp's failure as the httpx exception every relay already handles.

    Callers catch ``AIOHTTP_ERRORS`` with a plain ``try``: a context manager made
    with ``contextlib`` would cost a generator and two calls around every send
    and read of every call (about 2.5 µs each here).
    """
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(error))
    if isinstance(error, TimeoutError):
        return httpx.ReadTimeout(str(error) or "read timed out")
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(error))
    return httpx.ReadError(str(error) or type(error).__name__)


class AiohttpUpstreamResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def aread(self) -> bytes:
        try:
            return await self._response.read()
        except AIOHTTP_ERRORS as error:
            raise httpx_error(error) from error

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except AIOHTTP_ERRORS as error:
            raise httpx_error(error) from error

    async def aclose(self) -> None:
        """Return the connection to the pool if the body was read to the end, else drop it."""
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class NetworkUpstreams:
    """The shared session; made on first use so that it belongs to the serving event loop."""

    def __init__(self, *, timeout_s: float, connect_timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=timeout_s
        )
        self._session: aiohttp.ClientSession | None = None

    def _open_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, limit_per_host=0, ttl_dns_cache=DNS_CACHE_TTL_S
        )
        # No cookie jar: the session is shared by every org's calls, so a cookie one
        # upstream answer sets must not ride along on another org's call (and the jar's
        # per-request filtering is a measurable share of the client's own time).
        return aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def send(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> UpstreamResponse:
        if self._session is None:
            self._session = self._open_session()
        try:
            response = await self._session.request(method, url, data=body, headers=headers)
        except AIOHTTP_ERRORS as error:
            raise httpx_error(error) from error
        return AiohttpUpstreamResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
