"""Anthropic's Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Claude Code and the ``anthropic`` SDK reach the gateway with
``ANTHROPIC_BASE_URL`` set to it and the org token as their API key. Calls go
the same way as the OpenAI routes — hold, forward, settle — relayed as they
are to an Anthropic-format upstream, or translated for an OpenAI-format one.
Errors come out in Anthropic's shape (``proxy.errors`` picks it by path).
"""

from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from pricing import (
    InvalidTokenCounts,
    TokenCounts,
    count_anthropic_prompt_tokens,
    count_text_tokens,
    counts_from_anthropic,
)
from proxy import anthropic_translate as translate
from proxy.anthropic_stream import AnthropicStreamTap
from proxy.auth import Principal
from proxy.call.metered_call import MeteredCall
from proxy.errors import bad_request
from proxy.gateway import Gateway, authenticated, gateway_of
from proxy.metered_reply import (
    invalid_response,
    open_upstream,
    read_body,
    read_json,
    read_refusal,
    relayed,
    settle_reply,
    stream_headers,
)
from proxy.metered_stream import STATUS_OK, MeteredStreamResponse
from proxy.model_registry import ServedModel
from proxy.request_body import positive_int, read_json_object
from proxy.upstream.network import UpstreamResponse

router = APIRouter()

Caller = Annotated[Principal, Depends(authenticated)]
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
RELAYED_ERROR_HEADERS = ("retry-after", "x-should-retry")


@dataclass(frozen=True, slots=True)
class MessagesCall:
    """What the route worked out about a Messages request before anything is held."""

    principal: Principal
    model: ServedModel
    prompt_tokens: int
    max_output_tokens: int
    stream: bool

    @property
    def native(self) -> bool:
        """True when the upstream speaks Anthropic's format itself (no translation)."""
        return self.model.route.api_format == "anthropic"

    @property
    def encoding_model(self) -> str:
        return self.model.route.provider_model


def _anthropic_headers(request: Request) -> dict[str, str]:
    """The client's API version and beta flags, which select upstream behaviour."""
    headers = {
        "anthropic-version": request.headers.get("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
    }
    beta = request.headers.get("anthropic-beta")
    if beta:
        headers["anthropic-beta"] = beta
    return headers


def _messages_of(body: dict[str, Any]) -> list[Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: must be a non-empty array.", param="messages")
    return messages


def _tools_of(body: dict[str, Any]) -> list[Any] | None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad_request("tools: must be an array.", param="tools")
    return tools


def _prompt_tokens(body: dict[str, Any], model: ServedModel) -> int:
    return count_anthropic_prompt_tokens(
        body.get("system"), _messages_of(body), _tools_of(body), model.route.provider_model
    )


@router.post("/v1/messages")
async def create_message(request: Request, principal: Caller) -> Response:
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    max_tokens = positive_int(body, "max_tokens")
    if max_tokens is None:
        raise bad_request("max_tokens: Field required", param="max_tokens")
    bound = min(max_tokens, model.rates.max_output_tokens or max_tokens)
    call = MessagesCall(
        principal=principal,
        model=model,
        prompt_tokens=_prompt_tokens(body, model),
        max_output_tokens=bound,
        stream=body.get("stream") is True,
    )
    if call.native:
        path, payload = "/messages", {**body, "model": model.route.provider_model}
        headers: dict[str, str] | None = _anthropic_headers(request)
    else:
        path, payload = (
            "/chat/completions",
            translate.openai_request(body, model.route.provider_model),
        )
        headers = None
    return await _forward(gateway, call, path, payload, headers)


@router.post("/v1/messages/count_tokens")
async def count_tokens(request: Request, _: Caller) -> Response:
    """Free, as at Anthropic: asked of an Anthropic upstream, counted locally for the others."""
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    if model.route.api_format != "anthropic":
        return JSONResponse({"input_tokens": _prompt_tokens(body, model)})
    _messages_of(body)
    payload = {**body, "model": model.route.provider_model}
    upstream, _latency_s = await gateway.upstreams.open(
        model, "/messages/count_tokens", payload, headers=_anthropic_headers(request)
    )
    return relayed(await read_body(model, upstream), upstream)


async def _forward(
    gateway: Gateway,
    call: MessagesCall,
    path: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None,
) -> Response:
    metered = await gateway.meter.open(
        call.principal,
        call.model,
        operation="messages",
        source="anthropic",
        prompt_tokens=call.prompt_tokens,
        max_output_tokens=call.max_output_tokens,
    )
    upstream = await open_upstream(gateway, metered, path, payload, headers)
    if upstream.status_code >= 400:
        return await _relay_error(metered, upstream, native=call.native)
    if call.stream:
        return _stream(metered, upstream, call)
    return await _complete(metered, upstream, call)


async def _relay_error(
    metered: MeteredCall, upstream: UpstreamResponse, *, native: bool
) -> Response:
    raw, headers = await read_refusal(metered, upstream, RELAYED_ERROR_HEADERS)
    if native:
        return relayed(raw, upstream, headers)
    body = translate.anthropic_error(upstream.status_code, raw)
    return JSONResponse(body, status_code=upstream.status_code, headers=headers)


async def _complete(
    metered: MeteredCall, upstream: UpstreamResponse, call: MessagesCall
) -> Response:
    raw, body = await read_json(metered, upstream)
    if not isinstance(body, dict):
        metered.release_detached()
        raise invalid_response(call.model)
    if call.native:
        usage = _native_usage(body, call)
        content = raw
    else:
        message = translate.first_message(body)
        usage = translate.reported_openai_usage(body.get("usage")) or _counted(
            call, translate.reply_text(message)
        )
        content = orjson.dumps(translate.anthropic_message(body, call.model.name, usage))
    headers = await settle_reply(metered, usage)
    return Response(content, media_type="application/json", headers=headers)


def _native_usage(body: dict[str, Any], call: MessagesCall) -> TokenCounts:
    """The provider's counts, or the gateway's own when it reported none it could read."""
    usage = body.get("usage")
    if isinstance(usage, dict):
        try:
            return counts_from_anthropic(usage)
        except InvalidTokenCounts:
            pass
    parts: list[str] = []
    for block in body.get("content") or []:
        if isinstance(block, dict):
            for key in ("text", "thinking"):
                if isinstance(block.get(key), str):
                    parts.append(block[key])
            if block.get("type") == "tool_use":
                parts.append(orjson.dumps(block.get("input") or {}).decode())
    return _counted(call, "".join(parts))


def _counted(call: MessagesCall, text: str) -> TokenCounts:
    return TokenCounts(
        input_tokens=call.prompt_tokens,
        output_tokens=count_text_tokens(text, call.encoding_model),
    )


def _stream(metered: MeteredCall, upstream: UpstreamResponse, call: MessagesCall) -> Response:
    tap: AnthropicStreamTap | translate.AnthropicStreamFromOpenAI
    if call.native:
        # Relayed unchanged, piece by piece; the tap reads usage beside the bytes.
        tap = AnthropicStreamTap(
            encoding_model=call.encoding_model, prompt_tokens_estimate=call.prompt_tokens
        )
    else:
        tap = translate.AnthropicStreamFromOpenAI(
            model_name=call.model.name,
            encoding_model=call.encoding_model,
            prompt_tokens_estimate=call.prompt_tokens,
        )

    def usage_of(status: str) -> TokenCounts | None:
        """The provider's final counts; else what was streamed, counted; else nothing.

        A stream that ended on the upstream's error event before any content produced nothing.
        """
        if tap.final_usage is not None:
            return tap.final_usage
        if tap.content_events or (status == STATUS_OK and tap.error is None):
            return tap.counted_usage()
        return None

    return MeteredStreamResponse(metered, upstream, tap, usage_of, headers=stream_headers(metered))
