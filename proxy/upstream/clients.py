"""Where each model's calls go, and the single ``Upstreams.open`` call every relay makes.

Real providers (OpenAI and Anthropic formats) are reached over one shared
aiohttp session (``proxy.upstream.network``); the demo model and
litellm-routed providers are local httpx transports speaking OpenAI's wire
format. Either way the caller gets an ``UpstreamResponse``.
"""

import os
import time

import httpx
import orjson

from proxy.errors import ApiError
from proxy.model_registry import ServedModel
from proxy.upstream.demo import DemoTransport
from proxy.upstream.network import NetworkUpstreams, UpstreamResponse

DEFAULT_BASES = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com/v1"}
LOCAL_BASE = "http://upstream.local"
LOCAL_FORMATS = ("demo", "litellm")


class Upstreams:
    def __init__(
        self, *, timeout_s: float, connect_timeout_s: float, demo_stream_delay_s: float = 0.0
    ) -> None:
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._network = NetworkUpstreams(timeout_s=timeout_s, connect_timeout_s=connect_timeout_s)
        self._demo = httpx.AsyncClient(
            transport=DemoTransport(stream_delay_s=demo_stream_delay_s), base_url=LOCAL_BASE
        )
        self._litellm: httpx.AsyncClient | None = None
        self._timeout = timeout

    def _local_client(self, model: ServedModel) -> httpx.AsyncClient:
        if model.route.api_format == "demo":
            return self._demo
        if self._litellm is None:
            # Imported only when a litellm-routed model is configured: litellm
            # costs ~190 MB and seconds to import.
            from proxy.upstream.litellm_transport import LitellmTransport

            self._litellm = httpx.AsyncClient(
                transport=LitellmTransport(), base_url=LOCAL_BASE, timeout=self._timeout
            )
        return self._litellm

    @staticmethod
    def url(model: ServedModel, path: str) -> str:
        route = model.route
        if route.api_format in LOCAL_FORMATS:
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
        payload: dict[str, object] | None,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> tuple[UpstreamResponse, float]:
        """Send a request and return the open (streaming) response and its latency in seconds.

        ``payload`` is the JSON body, None for a request without one (``GET``,
        ``DELETE``). The caller must close the response. Upstream failures become
        the client's 502/504; an upstream's own error status is the caller's to relay.
        """
        request_headers = self.auth_headers(model)
        if payload is not None:
            request_headers["content-type"] = "application/json"
        if model.route.api_format == "litellm" and model.route.api_base:
            # LitellmTransport's API_BASE_HEADER: a litellm provider's own base URL.
            request_headers["x-litellm-api-base"] = model.route.api_base
        if headers:
            request_headers.update(headers)
        url = self.url(model, path)
        body = None if payload is None else orjson.dumps(payload)
        started = time.perf_counter()
        try:
            if model.route.api_format in LOCAL_FORMATS:
                client = self._local_client(model)
                request = client.build_request(method, url, content=body, headers=request_headers)
                response: UpstreamResponse = await client.send(request, stream=True)
            else:
                response = await self._network.send(method, url, body, request_headers)
        except httpx.HTTPError as error:
            raise upstream_failure(model, error) from error
        return response, time.perf_counter() - started

    async def aclose(self) -> None:
        await self._network.aclose()
        await self._demo.aclose()
        if self._litellm is not None:
            await self._litellm.aclose()


def upstream_failure(model: ServedModel, error: httpx.HTTPError) -> ApiError:
    """The client's error for an upstream that timed out (504) or failed in transit (502)."""
    if isinstance(error, httpx.TimeoutException):
        return ApiError(
            504,
            f"The upstream for '{model.name}' timed out.",
            error_type="api_error",
            code="upstream_timeout",
        )
    return ApiError(
        502,
        f"The upstream for '{model.name}' could not be reached.",
        error_type="api_error",
        code="upstream_unreachable",
    )
