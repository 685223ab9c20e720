"""How a Responses call goes upstream: as it is, or translated to Chat Completions or Messages.

Three exchanges on the one metered-call path (``proxy.call.relay``):

- ``NativeExchange``: an OpenAI-format upstream that serves the Responses API
  itself (``native_responses``). Body, refusals, replies and events pass
  unchanged; the provider's usage is read from the body or from the final
  ``response.completed`` (``response.incomplete`` / ``response.failed``). A
  response the upstream stores has its owner recorded before the client sees
  its id (``proxy.responses.owners``).
- ``ChatExchange``: every other OpenAI-format upstream (the demo model,
  litellm's providers, servers without ``/responses``): the request goes as
  Chat Completions, the answer comes back as a Response.
- ``MessagesExchange``: an ``anthropic`` upstream: the request goes as
  Anthropic Messages, the answer comes back as a Response.

Refusals come back in OpenAI's error shape whatever the upstream spoke, with
its status. The client's id is the upstream's for a native call, and one the
gateway mints for a translated one (nothing is stored upstream then).
"""

from abc import abstractmethod
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict
from urllib.parse import urlsplit

import orjson
from fastapi.responses import JSONResponse, Response

from ledger import ResponseOwners
from pricing import PromptTokens, TokenCounts
from proxy.anthropic.relay import DEFAULT_ANTHROPIC_VERSION, NativeReply
from proxy.call.relay import Exchange, invalid_response, relayed
from proxy.call.stream import StreamTap
from proxy.call.tally import Tally
from proxy.errors import ApiError, error_body
from proxy.model_registry import ServedModel
from proxy.openai.relay import OpenAIReply
from proxy.responses.from_anthropic import ResponsesFromAnthropic, response_from_anthropic
from proxy.responses.from_chat import ResponsesFromChat, response_from_chat
from proxy.responses.owners import record_owner
from proxy.responses.stream_tap import ResponsesStreamTap, response_text
from proxy.responses.tools import Tools
from proxy.responses.usage import reported_token_counts
from proxy.upstream.network import UpstreamResponse

RESPONSES_PATH = "/v1/responses"
OPENAI_HOST = "api.openai.com"
OPENAI_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
ANTHROPIC_ERROR_HEADERS = ("retry-after", "x-should-retry")
_ERROR_TYPES = {
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "rate_limit_error": "rate_limit_error",
    "invalid_request_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
}


class TallyOptions(TypedDict):
    encoding_model: str
    prompt: PromptTokens


def native_responses(model: ServedModel) -> bool:
    """Whether the model's upstream serves ``/responses`` itself (the route's ``responses_api``;
    unset: only OpenAI's own API does)."""
    route = model.route
    if route.api_format != "openai":
        return False
    if route.responses_api is not None:
        return route.responses_api
    return route.api_base is None or urlsplit(route.api_base).hostname == OPENAI_HOST


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponsesExchange(Exchange):
    """What every Responses exchange keeps: the client's request, which a Response echoes."""

    request: Mapping[str, Any]

    source: ClassVar[str] = "openai"

    @property
    def _tally_options(self) -> TallyOptions:
        """How a reader of this call counts what the upstream did not report."""
        return {
            "encoding_model": self.model.route.provider_model,
            "prompt": self.prompt,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeExchange(ResponsesExchange):
    """To an upstream that serves the Responses API: everything passes as it is."""

    owners: ResponseOwners | None
    """Where the response's owner is recorded; None when the upstream does not store it."""

    relayed_error_headers: ClassVar[tuple[str, ...]] = OPENAI_ERROR_HEADERS

    def refusal(self, raw: bytes, upstream: UpstreamResponse, headers: dict[str, str]) -> Response:
        return relayed(raw, upstream, headers)

    async def reply(self, raw: bytes, body: Any) -> tuple[bytes, TokenCounts]:
        if not isinstance(body, dict):
            raise invalid_response(self.model)
        return raw, await ResponsesReply(body, **self._tally_options).final()

    def tap(self) -> ResponsesStreamTap:
        return ResponsesStreamTap(**self._tally_options)

    def before_reply(self, body: Any) -> Awaitable[None] | None:
        if self.owners is None:
            return None
        response_id = body.get("id") if isinstance(body, dict) else None
        named = response_id if isinstance(response_id, str) else None
        return record_owner(self.owners, named, self.principal, self.model)

    def before_stream(self, tap: StreamTap) -> Awaitable[None] | None:
        if self.owners is None:
            return None
        assert isinstance(tap, ResponsesStreamTap)
        return record_owner(self.owners, tap.response_id, self.principal, self.model)


class ResponsesReply(Tally):
    """A complete Response: its reported counts, and its output items' text to count without."""

    def __init__(
        self, body: Mapping[str, Any], *, encoding_model: str, prompt: PromptTokens
    ) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._body = body
        self.reported = reported_token_counts(body.get("usage"))

    @property
    def generated_text(self) -> str:
        return response_text(self._body)


@dataclass(frozen=True, slots=True, kw_only=True)
class TranslatedExchange(ResponsesExchange):
    """A Responses call to an upstream of another protocol, the answer translated back."""

    tools: Tools
    """The client's tools, which the upstream's tool calls are mapped back to."""

    @abstractmethod
    async def _counts(self, body: dict[str, Any]) -> TokenCounts:
        """What the upstream's complete answer is charged, read as its protocol reports it."""

    @abstractmethod
    def _response(self, body: dict[str, Any], counts: TokenCounts) -> dict[str, Any]:
        """The Response for the upstream's complete answer, charged at ``counts``."""

    async def reply(self, raw: bytes, body: Any) -> tuple[bytes, TokenCounts]:
        if not isinstance(body, dict):
            raise invalid_response(self.model)
        counts = await self._counts(body)
        return orjson.dumps(self._response(body, counts)), counts


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatExchange(TranslatedExchange):
    """To an OpenAI-format upstream's Chat Completions."""

    relayed_error_headers: ClassVar[tuple[str, ...]] = OPENAI_ERROR_HEADERS

    def refusal(self, raw: bytes, upstream: UpstreamResponse, headers: dict[str, str]) -> Response:
        return relayed(raw, upstream, headers)

    async def _counts(self, body: dict[str, Any]) -> TokenCounts:
        return await OpenAIReply(body, embeddings=False, **self._tally_options).final()

    def _response(self, body: dict[str, Any], counts: TokenCounts) -> dict[str, Any]:
        return response_from_chat(
            body, self.request, tools=self.tools, model_name=self.model.name, usage=counts
        )

    def tap(self) -> ResponsesFromChat:
        return ResponsesFromChat(
            self.request, tools=self.tools, model_name=self.model.name, **self._tally_options
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MessagesExchange(TranslatedExchange):
    """To an Anthropic upstream's Messages API."""

    relayed_error_headers: ClassVar[tuple[str, ...]] = ANTHROPIC_ERROR_HEADERS

    def refusal(self, raw: bytes, upstream: UpstreamResponse, headers: dict[str, str]) -> Response:
        body = openai_error(upstream.status_code, raw)
        return JSONResponse(body, status_code=upstream.status_code, headers=headers)

    async def _counts(self, body: dict[str, Any]) -> TokenCounts:
        return await NativeReply(body, **self._tally_options).final()

    def _response(self, body: dict[str, Any], counts: TokenCounts) -> dict[str, Any]:
        return response_from_anthropic(
            body, self.request, tools=self.tools, model_name=self.model.name, usage=counts
        )

    def tap(self) -> ResponsesFromAnthropic:
        return ResponsesFromAnthropic(
            self.request, tools=self.tools, model_name=self.model.name, **self._tally_options
        )


MESSAGES_HEADERS = {"anthropic-version": DEFAULT_ANTHROPIC_VERSION}
"""What a translated call sends an Anthropic upstream: the API version, no betas."""


def openai_error(status: int, raw: bytes) -> dict[str, Any]:
    """An Anthropic upstream's error body re-rendered in OpenAI's shape, same status."""
    message, kind = "The upstream returned an error.", None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or message)
        kind = _ERROR_TYPES.get(str(error.get("type")))
    error_type = kind or ("invalid_request_error" if status < 500 else "api_error")
    return error_body(ApiError(status, message, error_type=error_type), RESPONSES_PATH)
