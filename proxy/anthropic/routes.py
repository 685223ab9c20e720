"""Anthropic's Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Claude Code and the ``anthropic`` SDK reach the gateway with
``ANTHROPIC_BASE_URL`` set to it and the org token as their API key. A
message is metered as every call is (``proxy.call.relay``), relayed natively
or translated (``proxy.anthropic.relay``). Errors come out in Anthropic's
shape (``proxy.errors`` picks it by path).
"""

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pricing import PromptTokens, anthropic_prompt_tokens, chat_prompt_tokens
from proxy.anthropic.relay import NativeExchange, TranslatedExchange, anthropic_headers
from proxy.anthropic.translation import openai_request
from proxy.call.relay import read_body, relayed
from proxy.errors import bad_request
from proxy.gateway import authenticated, gateway_of
from proxy.model_registry import ServedModel
from proxy.protocol_routes import protocol_route
from proxy.request_body import positive_int, read_json_object

router = APIRouter()


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


def _prompt(body: dict[str, Any], model: ServedModel) -> PromptTokens:
    return anthropic_prompt_tokens(
        body.get("system"), _messages_of(body), _tools_of(body), model.route.provider_model
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
    max_tokens = positive_int(body, "max_tokens")
    if max_tokens is None:
        raise bad_request("max_tokens: Field required", param="max_tokens")
    exchange: type[NativeExchange | TranslatedExchange]
    if _native(model):
        exchange, path = NativeExchange, "/messages"
        prompt = _prompt(body, model)
        payload = {**body, "model": model.route.provider_model}
        headers: dict[str, str] | None = anthropic_headers(request)
    else:
        exchange, path = TranslatedExchange, "/chat/completions"
        _messages_of(body)
        _tools_of(body)
        payload, headers = openai_request(body, model.route.provider_model), None
        prompt = _translated_prompt(payload, model)
        if body.get("stream") is True:
            # Its message_start must give the input tokens before the upstream reports any
            # (Claude Code reads them): counted now, off the event loop, while nothing is held.
            await asyncio.to_thread(prompt.exact)
    return await gateway.relay.forward(
        exchange(
            principal=principal,
            model=model,
            operation="messages",
            prompt=prompt,
            max_output_tokens=min(max_tokens, model.rates.max_output_tokens or max_tokens),
            stream=body.get("stream") is True,
            path=path,
            payload=payload,
            headers=headers,
        )
    )


async def count_tokens(request: Request) -> Response:
    """Free, as at Anthropic: asked of an Anthropic upstream, counted locally for the others."""
    await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    if not _native(model):
        input_tokens = await asyncio.to_thread(_prompt(body, model).exact)
        return JSONResponse({"input_tokens": input_tokens})
    _messages_of(body)
    payload = {**body, "model": model.route.provider_model}
    upstream, _latency_s = await gateway.upstreams.open(
        model, "/messages/count_tokens", payload, headers=anthropic_headers(request)
    )
    return relayed(await read_body(model, upstream), upstream)


protocol_route(router, "POST", "/v1/messages", create_message)
protocol_route(router, "POST", "/v1/messages/count_tokens", count_tokens)
