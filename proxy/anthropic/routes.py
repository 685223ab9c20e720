"""Anthropic's Messages API: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Claude Code and the ``anthropic`` SDK reach the gateway with
``ANTHROPIC_BASE_URL`` set to it and the org token as their API key. A
message is metered as every call is (``proxy.call.relay``), relayed natively
or translated (``proxy.anthropic.relay``). Errors come out in Anthropic's
shape (``proxy.errors`` picks it by path).
"""

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from pricing import count_anthropic_prompt_tokens, count_chat_prompt_tokens
from proxy.anthropic import checks, schemas
from proxy.anthropic.relay import NativeExchange, TranslatedExchange, anthropic_headers
from proxy.anthropic.translation import openai_request
from proxy.call.relay import read_body, relayed
from proxy.gateway import authenticated, gateway_of
from proxy.model_registry import ServedModel
from proxy.protocol_routes import ProtocolRouter, protocol_route
from proxy.request_body import read_json_object

router = ProtocolRouter()


def _prompt_tokens(prompt: checks.Prompt, model: ServedModel) -> int:
    return count_anthropic_prompt_tokens(
        prompt.system, prompt.messages, prompt.tools, model.route.provider_model
    )


def _translated_prompt_tokens(chat: dict[str, Any], model: ServedModel) -> int:
    """A translated call's prompt, counted as the upstream is sent it: the hold and the
    estimate ``message_start`` reports then agree with what the upstream counts."""
    return count_chat_prompt_tokens(chat["messages"], model.route.provider_model, chat.get("tools"))


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
    prompt = checks.prompt(body)
    exchange: type[NativeExchange | TranslatedExchange]
    if _native(model):
        exchange, path = NativeExchange, "/messages"
        prompt_tokens = _prompt_tokens(prompt, model)
        payload = {**body, "model": model.route.provider_model}
        headers: dict[str, str] | None = anthropic_headers(request)
    else:
        exchange, path = TranslatedExchange, "/chat/completions"
        payload, headers = openai_request(body, model.route.provider_model), None
        prompt_tokens = _translated_prompt_tokens(payload, model)
    return await gateway.relay.forward(
        exchange(
            principal=principal,
            model=model,
            operation="messages",
            prompt_tokens=prompt_tokens,
            max_output_tokens=max_output_tokens,
            stream=stream,
            path=path,
            payload=payload,
            headers=headers,
        ),
        request,
    )


async def count_tokens(request: Request) -> Response:
    """Free, as at Anthropic: asked of an Anthropic upstream, counted locally for the others."""
    await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    prompt = checks.prompt(body)
    if not _native(model):
        return JSONResponse({"input_tokens": _prompt_tokens(prompt, model)})
    payload = {**body, "model": model.route.provider_model}
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
    answers=(400, 402, 404, 413, 429, 502, 503, 504),
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
