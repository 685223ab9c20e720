"""Providers other than OpenAI and Anthropic, through litellm, behind OpenAI's wire format.

An httpx transport, so a litellm-routed model goes through the very relay,
stream tap and metering that an OpenAI-format model does: requests arrive as
Chat Completions or Embeddings bodies, and answers leave as OpenAI JSON or
server-sent events (ending with the usage chunk when ``stream_options`` asks
for it). ``Upstreams`` imports this module only when such a model is
configured: litellm costs ~190 MB and seconds to import.

Only OpenAI's documented request fields reach litellm. The rest of a client's
body is dropped, because litellm also takes ``api_base``, ``api_key`` and
callbacks as keyword arguments, and a client must not set those.
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import litellm
import openai
import orjson

API_BASE_HEADER = "x-litellm-api-base"
"""Set by ``Upstreams`` from the model route's ``api_base`` (e.g. a local Ollama)."""

CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "web_search_options",
    }
)
EMBEDDING_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_JSON = {"content-type": "application/json"}


def _error_response(status: int, message: str, error_type: str) -> httpx.Response:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return httpx.Response(status, content=orjson.dumps(body), headers=_JSON)


def _provider_error(error: openai.APIError) -> httpx.Response:
    status = getattr(error, "status_code", None)
    if not isinstance(status, int) or status < 400:
        status = 502
    return _error_response(status, str(getattr(error, "message", error)), type(error).__name__)


def _as_transport_error(
    error: openai.APIConnectionError, request: httpx.Request
) -> httpx.HTTPError:
    """A provider unreachable or too slow: the same httpx error an HTTP upstream would raise."""
    if isinstance(error, openai.APITimeoutError):
        return httpx.ReadTimeout(str(error), request=request)
    return httpx.ConnectError(str(error), request=request)


class LitellmTransport(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(await request.aread())
        if not isinstance(body, dict):
            return _error_response(
                400, "The request body must be a JSON object.", "invalid_request_error"
            )
        credentials = self._credentials(request)
        try:
            if request.url.path == "/chat/completions":
                return await self._chat(body, credentials, request)
            if request.url.path == "/embeddings":
                return await self._embeddings(body, credentials)
        except openai.APIConnectionError as error:
            raise _as_transport_error(error, request) from error
        except openai.APIError as error:
            return _provider_error(error)
        return _error_response(
            404, f"{request.url.path} is not served through litellm.", "not_found_error"
        )

    @staticmethod
    def _credentials(request: httpx.Request) -> dict[str, Any]:
        credentials: dict[str, Any] = {}
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key:
            credentials["api_key"] = key
        if request.headers.get(API_BASE_HEADER):
            credentials["api_base"] = request.headers[API_BASE_HEADER]
        timeout = request.extensions.get("timeout", {}).get("read")
        if timeout is not None:
            credentials["timeout"] = timeout
        return credentials

    async def _chat(
        self, body: Mapping[str, Any], credentials: dict[str, Any], request: httpx.Request
    ) -> httpx.Response:
        params = {name: value for name, value in body.items() if name in CHAT_FIELDS}
        # A provider that lacks a parameter (say, seed) answers without it rather than failing.
        response = await litellm.acompletion(**params, **credentials, drop_params=True)
        if not params.get("stream"):
            return httpx.Response(
                200, content=orjson.dumps(response.model_dump(mode="json")), headers=_JSON
            )
        return httpx.Response(
            200,
            content=_events(response, request),
            headers={"content-type": "text/event-stream"},
        )

    async def _embeddings(
        self, body: Mapping[str, Any], credentials: dict[str, Any]
    ) -> httpx.Response:
        params = {name: value for name, value in body.items() if name in EMBEDDING_FIELDS}
        response = await litellm.aembedding(**params, **credentials, drop_params=True)
        return httpx.Response(
            200, content=orjson.dumps(response.model_dump(mode="json")), headers=_JSON
        )


async def _events(stream: Any, request: httpx.Request) -> AsyncIterator[bytes]:
    """litellm's chunks as OpenAI's events; a provider failing midway is a read error."""
    try:
        async for chunk in stream:
            yield b"data: " + orjson.dumps(chunk.model_dump(mode="json")) + b"\n\n"
    except openai.APIError as error:
        raise httpx.ReadError(f"litellm stream failed: {error}", request=request) from error
    finally:
        await stream.aclose()
    yield b"data: [DONE]\n\n"
