"""Forward one metered OpenAI-format call and settle it: the shared body of every /v1 route."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import Response

from pricing import InvalidTokenCounts, TokenCounts, count_text_tokens, counts_from_openai
from proxy.auth import Principal
from proxy.call.metered_call import MeteredCall
from proxy.gateway import Gateway
from proxy.metered_reply import (
    open_upstream,
    read_json,
    read_refusal,
    relayed,
    settle_reply,
    stream_headers,
)
from proxy.metered_stream import STATUS_OK, MeteredStreamResponse
from proxy.model_registry import ServedModel
from proxy.openai_stream import OpenAIStreamTap
from proxy.upstream.network import UpstreamResponse

EMBEDDINGS = "embeddings"
RELAYED_ERROR_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
"""What the OpenAI SDK reads to pace its retries; an upstream's 429 keeps its advice."""


@dataclass(frozen=True, slots=True)
class OpenAICall:
    """What a route worked out about the request before anything is held."""

    principal: Principal
    model: ServedModel
    path: str
    operation: str
    payload: dict[str, Any]
    prompt_tokens: int
    max_output_tokens: int
    stream: bool = False
    client_wants_usage: bool = False


def reported_usage(usage: object, *, operation: str = "") -> TokenCounts | None:
    """The upstream's own usage report, or None when it sent none or an unreadable one.

    Embeddings produce no output, so their usage has no completion count; any
    other operation's report without one is unreadable, never a free output.
    """
    if not isinstance(usage, Mapping):
        return None
    if operation == EMBEDDINGS and "completion_tokens" not in usage:
        usage = {**usage, "completion_tokens": 0}
    try:
        return counts_from_openai(usage)
    except InvalidTokenCounts:
        return None


def counted_usage(call: MeteredCall, text: str) -> TokenCounts:
    """What the upstream did not report, counted by the gateway (tiktoken)."""
    return TokenCounts(
        input_tokens=call.prompt_tokens_estimate,
        output_tokens=count_text_tokens(text, call.model.route.provider_model),
    )


async def forward(gateway: Gateway, spec: OpenAICall) -> Response:
    metered = await gateway.meter.open(
        spec.principal,
        spec.model,
        operation=spec.operation,
        source="openai",
        prompt_tokens=spec.prompt_tokens,
        max_output_tokens=spec.max_output_tokens,
    )
    upstream = await open_upstream(gateway, metered, spec.path, spec.payload)
    if upstream.status_code >= 400:
        return await _relay_error(metered, upstream)
    if spec.stream:
        return _stream(metered, upstream, drop_usage_chunk=not spec.client_wants_usage)
    return await _complete(metered, upstream)


async def _relay_error(metered: MeteredCall, upstream: UpstreamResponse) -> Response:
    raw, headers = await read_refusal(metered, upstream, RELAYED_ERROR_HEADERS)
    return relayed(raw, upstream, headers)


async def _complete(metered: MeteredCall, upstream: UpstreamResponse) -> Response:
    raw, body = await read_json(metered, upstream)
    reported = (
        reported_usage(body.get("usage"), operation=metered.operation)
        if isinstance(body, dict)
        else None
    )
    usage = reported or counted_usage(metered, _choices_text(body))
    headers = await settle_reply(metered, usage)
    return Response(raw, media_type="application/json", headers=headers)


def _choices_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        for value in (choice.get("text"), message.get("content")):
            if isinstance(value, str):
                parts.append(value)
        for tool_call in message.get("tool_calls") or []:
            parts.append(orjson.dumps(tool_call.get("function", {})).decode())
    return "".join(parts)


def _stream(
    metered: MeteredCall, upstream: UpstreamResponse, *, drop_usage_chunk: bool
) -> MeteredStreamResponse:
    tap = OpenAIStreamTap(drop_usage_chunk=drop_usage_chunk)

    def usage_of(status: str) -> TokenCounts | None:
        reported = reported_usage(tap.usage)
        if reported is not None:
            return reported
        if tap.content_events or status == STATUS_OK:
            return counted_usage(metered, tap.generated_text)
        return None

    return MeteredStreamResponse(
        metered,
        upstream,
        tap,
        usage_of,
        headers=stream_headers(metered),
    )
