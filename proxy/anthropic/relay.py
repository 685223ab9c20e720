"""How a Messages call goes upstream: as it is to an Anthropic upstream, or translated.

A model whose ``api_format`` is ``anthropic`` is relayed natively: the body,
the client's ``anthropic-version`` and ``anthropic-beta``, refusals, replies
and events all pass unchanged, and the provider's cache-aware counts are
read beside them. Every other model speaks OpenAI's format upstream (the demo
model and litellm's providers too), so requests, replies, refusals and
streams are translated on the way (``proxy.anthropic.translation``).
"""

from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from pricing import PromptTokens, TokenCounts
from proxy.anthropic.counts import content_text, reported_anthropic_counts
from proxy.anthropic.stream import AnthropicStreamTap
from proxy.anthropic.translation import (
    AnthropicStreamFromOpenAI,
    anthropic_error,
    anthropic_message,
)
from proxy.call.relay import Exchange, invalid_response, relayed
from proxy.call.tally import Tally
from proxy.openai.relay import OpenAIReply
from proxy.upstream.network import UpstreamResponse

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
RELAYED_ERROR_HEADERS = ("retry-after", "x-should-retry")


def anthropic_headers(request: Request) -> dict[str, str]:
    """The client's API version and beta flags, which select upstream behaviour."""
    headers = {
        "anthropic-version": request.headers.get("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
    }
    beta = request.headers.get("anthropic-beta")
    if beta:
        headers["anthropic-beta"] = beta
    return headers


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeExchange(Exchange):
    """A Messages call to an Anthropic-format upstream."""

    source: ClassVar[str] = "anthropic"
    relayed_error_headers: ClassVar[tuple[str, ...]] = RELAYED_ERROR_HEADERS

    def refusal(self, raw: bytes, upstream: UpstreamResponse, headers: dict[str, str]) -> Response:
        return relayed(raw, upstream, headers)

    async def reply(self, raw: bytes, body: Any) -> tuple[bytes, TokenCounts]:
        if not isinstance(body, dict):
            raise invalid_response(self.model)
        reply = NativeReply(
            body, encoding_model=self.model.route.provider_model, prompt=self.prompt
        )
        return raw, await reply.final()

    def tap(self) -> AnthropicStreamTap:
        return AnthropicStreamTap(
            encoding_model=self.model.route.provider_model, prompt=self.prompt
        )


class NativeReply(Tally):
    """A complete Messages reply: its reported counts, and its content to count without them."""

    def __init__(self, body: dict[str, Any], *, encoding_model: str, prompt: PromptTokens) -> None:
        super().__init__(encoding_model=encoding_model, prompt=prompt)
        self._content = body.get("content")
        self.reported = reported_anthropic_counts(body.get("usage"))

    @property
    def generated_text(self) -> str:
        return content_text(self._content)


@dataclass(frozen=True, slots=True, kw_only=True)
class TranslatedExchange(Exchange):
    """A Messages call to an OpenAI-format upstream, translated both ways."""

    source: ClassVar[str] = "anthropic"
    relayed_error_headers: ClassVar[tuple[str, ...]] = RELAYED_ERROR_HEADERS

    def refusal(self, raw: bytes, upstream: UpstreamResponse, headers: dict[str, str]) -> Response:
        body = anthropic_error(upstream.status_code, raw)
        return JSONResponse(body, status_code=upstream.status_code, headers=headers)

    async def reply(self, raw: bytes, body: Any) -> tuple[bytes, TokenCounts]:
        if not isinstance(body, dict):
            raise invalid_response(self.model)
        counts = await OpenAIReply(
            body,
            embeddings=False,
            encoding_model=self.model.route.provider_model,
            prompt=self.prompt,
        ).final()
        return orjson.dumps(anthropic_message(body, self.model.name, counts)), counts

    def tap(self) -> AnthropicStreamFromOpenAI:
        return AnthropicStreamFromOpenAI(
            model_name=self.model.name,
            encoding_model=self.model.route.provider_model,
            prompt=self.prompt,
        )
