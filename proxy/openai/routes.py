"""OpenAI wire-format routes: chat completions, completions, embeddings, models (listed, or one).

Each metered route checks and estimates its request, then hands an
``OpenAIExchange`` to the gateway's relay (``proxy.call.relay``).
"""

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from pricing import PromptTokens, chat_prompt_tokens, texts_prompt_tokens
from proxy.auth import Principal
from proxy.gateway import Gateway, authenticated, gateway_of
from proxy.model_registry import ServedModel
from proxy.openai import checks, schemas
from proxy.openai.relay import EMBEDDINGS, OpenAIExchange
from proxy.protocol_routes import METERED_ANSWERS, ProtocolRouter, protocol_route
from proxy.request_body import read_json_object

router = ProtocolRouter()


def _prompt_extras(body: dict[str, Any]) -> list[Any]:
    """Legacy ``functions`` and a ``response_format`` schema are prompt too."""
    return [body[name] for name in ("functions", "response_format") if body.get(name)]


async def _relay_generation(
    request: Request,
    gateway: Gateway,
    principal: Principal,
    model: ServedModel,
    body: dict[str, Any],
    *,
    operation: str,
    path: str,
    prompt: PromptTokens,
    max_output_tokens: int,
) -> Response:
    """Chat and legacy completions, streamed when asked: a streaming upstream is always asked
    for its usage chunk, which reaches the client only if it asked too."""
    streaming = checks.streaming(body)
    payload = {**body, "model": model.route.provider_model}
    if streaming.stream:
        options = body.get("stream_options") or {}
        payload["stream_options"] = {**options, "include_usage": True}
    return await gateway.relay.forward(
        OpenAIExchange(
            principal=principal,
            model=model,
            operation=operation,
            prompt=prompt,
            max_output_tokens=max_output_tokens,
            stream=streaming.stream,
            path=path,
            payload=payload,
            client_wants_usage=streaming.client_wants_usage,
        ),
        request,
        body,
    )


async def chat_completions(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    messages = checks.chat_messages(body)
    tools = checks.chat_tools(body)
    max_output_tokens = checks.chat_output_bound(body, model, gateway.settings.default_max_tokens)
    prompt = chat_prompt_tokens(messages, model.route.provider_model, tools, _prompt_extras(body))
    return await _relay_generation(
        request,
        gateway,
        principal,
        model,
        body,
        operation="chat.completions",
        path="/chat/completions",
        prompt=prompt,
        max_output_tokens=max_output_tokens,
    )


async def completions(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    prompts = checks.completion_prompts(body)
    max_output_tokens = checks.completion_output_bound(body, model, len(prompts))
    return await _relay_generation(
        request,
        gateway,
        principal,
        model,
        body,
        operation="completions",
        path="/completions",
        prompt=texts_prompt_tokens(prompts, model.route.provider_model),
        max_output_tokens=max_output_tokens,
    )


async def embeddings(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    items = checks.embedding_inputs(body)
    return await gateway.relay.forward(
        OpenAIExchange(
            principal=principal,
            model=model,
            operation=EMBEDDINGS,
            prompt=texts_prompt_tokens(items, model.route.provider_model),
            max_output_tokens=0,
            stream=False,
            path="/embeddings",
            payload={**body, "model": model.route.provider_model},
        ),
        request,
        body,
    )


def _model_object(model: ServedModel) -> dict[str, Any]:
    return {"id": model.name, "object": "model", "created": 0, "owned_by": model.provider}


async def list_models(request: Request) -> Response:
    await authenticated(request)
    listing = {
        "object": "list",
        "data": [_model_object(model) for model in gateway_of(request).registry.all()],
    }
    return Response(orjson.dumps(listing), media_type="application/json")


async def retrieve_model(request: Request) -> Response:
    """``client.models.retrieve``: one served model, or 404 (``model_not_found``)."""
    await authenticated(request)
    model = gateway_of(request).registry.get(request.path_params["model"])
    return Response(orjson.dumps(_model_object(model)), media_type="application/json")


protocol_route(
    router,
    "POST",
    "/v1/chat/completions",
    chat_completions,
    summary="OpenAI Chat Completions, streamed or not",
    request_schema=schemas.CHAT_COMPLETION,
    answers=METERED_ANSWERS,
)
protocol_route(
    router,
    "POST",
    "/v1/completions",
    completions,
    summary="OpenAI legacy Completions",
    request_schema=schemas.COMPLETION,
    answers=METERED_ANSWERS,
)
protocol_route(
    router,
    "POST",
    "/v1/embeddings",
    embeddings,
    summary="OpenAI Embeddings",
    request_schema=schemas.EMBEDDING,
    answers=METERED_ANSWERS,
)
protocol_route(router, "GET", "/v1/models", list_models, summary="The models this gateway serves")
protocol_route(
    router,
    "GET",
    "/v1/models/{model:path}",
    retrieve_model,
    summary="One model this gateway serves",
    answers=(404,),
)
