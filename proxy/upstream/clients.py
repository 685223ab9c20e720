"""One shared connection pool per kind of upstream, and the single ``open_upstream`` call."""

import os
import time

import httpx
import orjson

from proxy.errors import ApiError
from proxy.model_registry import ServedModel
from proxy.upstream.demo import DemoTransport

DEFAULT_BASES = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com/v1"}
LOCAL_BASE = "http://upstream.local"
MAX_CONNECTIONS = 1000
MAX_KEEPALIVE_CONNECTIONS = 200


class Upstreams:
    def __init__(
        self, *, timeout_s: float, connect_timeout_s: float, demo_stream_delay_s: float = 0.0
    ) -> None:
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._http = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS
            ),
        )
        self._demo = httpx.AsyncClient(transport=DemoTransport(stream_delay_s=demo_stream_delay_s), base_url=LOCAL_BASE)
        self._litellm: httpx.AsyncClient | None = None
        self._timeout = timeout

    def _client(self, model: ServedModel) -> httpx.AsyncClient:
        api_format = model.route.api_format
        if api_format == "demo":
            return self._demo
        if api_format == "litellm":
            if self._litellm is None:
                # Imported only when a litellm-routed model is configured: litellm
                # costs ~190 MB and seconds to import.
                from proxy.upstream.litellm_transport import LitellmTransport

                self._litellm = httpx.AsyncClient(
                    transport=LitellmTransport(), base_url=LOCAL_BASE, timeout=self._timeout
                )
            return self._litellm
        return self._http

    @staticmethod
    def url(model: ServedModel, path: str) -> str:
        route = model.route
        if route.api_format in ("demo", "litellm"):
            return LOCAL_BASE + path
        base = route.api_base or DEFAULT_BASES[route.api_format]
        return base.rstrip("/") + path

    @staticmethod
    def auth_headers(model: ServedModel) -> dict[str, str]:
        route = model.route
        key = os.environ.get(route.api_key_env, "") if route.api_key_env else ""
        if not key:
            return {}
        if route.api_format == "anthropic":
            return {"x-api-key": key}
        return {"authorization": f"Bearer {key}"}

    async def open(
        self,
        model: ServedModel,
        path: str,
        payload: dict[str, object],
        *,
        headers: dict[str, str] | None = None,
    ) -> tuple[httpx.Response, float]:
        """Send a request and return the open (streaming) response and its latency in seconds.

        The caller must close the response. Upstream failures become the client's
        502/504; an upstream's own error status is the caller's to relay.
        """
        request_headers = {"content-type": "application/json", **self.auth_headers(model)}
        if headers:
            request_headers.update(headers)
        client = self._client(model)
        request = client.build_request(
            "POST", self.url(model, path), content=orjson.dumps(payload), headers=request_headers
        )
        started = time.perf_counter()
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException as error:
            raise ApiError(
                504,
                f"The upstream for '{model.name}' timed out.",
                error_type="api_error",
                code="upstream_timeout",
            ) from error
        except httpx.TransportError as error:
            raise ApiError(
                502,
                f"The upstream for '{model.name}' could not be reached.",
                error_type="api_error",
                code="upstream_unreachable",
            ) from error
        return response, time.perf_counter() - started

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._demo.aclose()
        if self._litellm is not None:
            await self._litellm.aclose()
