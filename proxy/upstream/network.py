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

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
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


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    """Re-raise aiohttp's failures as the httpx exceptions every relay already handles."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        raise httpx.ConnectTimeout(str(error)) from error
    except TimeoutError as error:  # aiohttp's read timeouts are TimeoutError subclasses
        raise httpx.ReadTimeout(str(error) or "read timed out") from error
    except aiohttp.ClientConnectorError as error:
        raise httpx.ConnectError(str(error)) from error
    except aiohttp.ClientError as error:
        raise httpx.ReadError(str(error) or type(error).__name__) from error


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
        with httpx_errors():
            return await self._response.read()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for chunk in self._response.content.iter_any():
                yield chunk

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
        with httpx_errors():
            response = await self._session.request(method, url, data=body, headers=headers)
        return AiohttpUpstreamResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
