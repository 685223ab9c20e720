"""Anthropic's Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Claude Code and the ``anthropic`` SDK reach the gateway with
``ANTHROPIC_BASE_URL`` set to it and the org token as their API key. A
message is metered as every call is (``proxy.call.relay``), relayed natively
or translated (``proxy.anthropic.relay``). Errors come out in Anthropic's
shape (``proxy.errors`` picks it by path).
"""

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from pricing import PromptTokens, anthropic_prompt_tokens, chat_prompt_tokens
from proxy.anthropic import checks, schemas
from proxy.anthropic.relay import NativeExchange, TranslatedExchange, anthropic_headers
from proxy.anthropic.translation import openai_request
from proxy.call.relay import read_body, relayed
from proxy.gateway import authenticated, gateway_of
from proxy.model_registry import ServedModel
from proxy.protocol_routes import METERED_ANSWERS, ProtocolRouter, protocol_route
from proxy.request_body import read_json_object
from proxy.server.give_way import upstream_wait

router = ProtocolRouter()


def _prompt(checked: checks.Prompt, model: ServedModel) -> PromptTokens:
    return anthropic_prompt_tokens(
        checked.system, checked.messages, checked.tools, model.route.provider_model
    )


def _translated_prompt(chat: dict[str, Any], model: ServedModel) -> PromptTokens:
    """A translated call's prompt, sized as the upstream is sent it: the hold and the
    estimate ``message_start`` reports then follow what the upstream counts."""
    return chat_prompt_tokens(chat["messages"], model.route.provider_model, chat.get("tools"))


def _native(model: ServedModel) -> bool:
    """Whether the model's upstream speaks Anthropic's format itself (no translation)."""
    return model.route.api_format == "anthropic"


async def create_message(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    max_output_tokens = checks.output_bound(body, model)
    stream = checks.stream(body)
    checks.tool_choice(body)
    checked = checks.prompt(body)
    exchange: type[NativeExchange | TranslatedExchange]
    if _native(model):
        exchange, path = NativeExchange, "/messages"
        prompt = _prompt(checked, model)
        payload = {**body, "model": model.route.provider_model}
        headers: dict[str, str] | None = anthropic_headers(request)
    else:
        exchange, path = TranslatedExchange, "/chat/completions"
        payload, headers = openai_request(body, model.route.provider_model), None
        prompt = _translated_prompt(payload, model)
        if stream:
            # Its message_start must give the input tokens before the upstream reports any
            # (Claude Code reads them): counted now, off the event loop, while nothing is held.
            await asyncio.to_thread(prompt.exact)
    return await gateway.relay.forward(
        exchange(
            principal=principal,
            model=model,
            operation="messages",
            prompt=prompt,
            max_output_tokens=max_output_tokens,
            stream=stream,
            path=path,
            payload=payload,
            headers=headers,
        ),
        request,
        body,
    )


async def count_tokens(request: Request) -> Response:
    """Free, as at Anthropic: asked of an Anthropic upstream, counted locally for the others."""
    await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    checked = checks.prompt(body)
    if not _native(model):
        input_tokens = await asyncio.to_thread(_prompt(checked, model).exact)
        return JSONResponse({"input_tokens": input_tokens})
    payload = {**body, "model": model.route.provider_model}
    async with upstream_wait(working_after=True):
        upstream, _latency_s = await gateway.upstreams.open(
            model, "/messages/count_tokens", payload, headers=anthropic_headers(request)
        )
    return relayed(await read_body(model, upstream), upstream)


protocol_route(
    router,
    "POST",
    "/v1/messages",
    create_message,
    summary="Anthropic Messages, streamed or not",
    request_schema=schemas.MESSAGE_REQUEST,
    answers=METERED_ANSWERS,
)
protocol_route(
    router,
    "POST",
    "/v1/messages/count_tokens",
    count_tokens,
    summary="Anthropic token counting (free)",
    request_schema=schemas.COUNT_TOKENS_REQUEST,
    answers=(400, 404, 413, 502, 503, 504),
)
