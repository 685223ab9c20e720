"""OpenAI wire-format routes: chat completions, completions, embeddings, models (listed, or one).

Each metered route checks and estimates its request, then hands an
``OpenAIExchange`` to the gateway's relay (``proxy.call.relay``).
"""

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pricing import PromptTokens, chat_prompt_tokens, texts_prompt_tokens
from proxy.auth import Principal
from proxy.errors import bad_request
from proxy.gateway import Gateway, authenticated, gateway_of
from proxy.model_registry import ServedModel
from proxy.openai.relay import EMBEDDINGS, OpenAIExchange
from proxy.protocol_routes import protocol_route
from proxy.request_body import positive_int, read_json_object

router = APIRouter()


def _output_bound(body: dict[str, Any], model: ServedModel, default_max_tokens: int) -> int:
    """Worst-case output tokens: the client's bound (per choice, times ``n``) or the default."""
    requested = positive_int(body, "max_completion_tokens", "max_tokens")
    bound = requested or default_max_tokens
    if model.rates.max_output_tokens:
        bound = min(bound, model.rates.max_output_tokens)
    choices = positive_int(body, "n") or 1
    return bound * choices


def _prompt_extras(body: dict[str, Any]) -> list[Any]:
    """Legacy ``functions`` and a ``response_format`` schema are prompt too."""
    return [body[name] for name in ("functions", "response_format") if body.get(name)]


async def _relay_generation(
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
    stream = body.get("stream") is True
    payload = {**body, "model": model.route.provider_model}
    client_wants_usage = False
    if stream:
        options = body.get("stream_options") or {}
        payload["stream_options"] = {**options, "include_usage": True}
        client_wants_usage = bool(options.get("include_usage"))
    return await gateway.relay.forward(
        OpenAIExchange(
            principal=principal,
            model=model,
            operation=operation,
            prompt=prompt,
            max_output_tokens=max_output_tokens,
            stream=stream,
            path=path,
            payload=payload,
            client_wants_usage=client_wants_usage,
        )
    )


def _embedding_inputs(raw: Any) -> list[str | list[int]]:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, int) for item in raw):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, str | list) for item in raw):
        return raw
    raise bad_request(
        "'input' must be a string, an array of strings, or token arrays.", param="input"
    )


async def chat_completions(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    tools = body.get("tools")
    prompt = chat_prompt_tokens(
        messages,
        model.route.provider_model,
        tools if isinstance(tools, list) else None,
        _prompt_extras(body),
    )
    return await _relay_generation(
        gateway,
        principal,
        model,
        body,
        operation="chat.completions",
        path="/chat/completions",
        prompt=prompt,
        max_output_tokens=_output_bound(body, model, gateway.settings.default_max_tokens),
    )


async def completions(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = prompt
    else:
        raise bad_request("'prompt' must be a string or an array of strings.", param="prompt")
    # Legacy completions default to 16 output tokens per prompt when none is given.
    bound = positive_int(body, "max_tokens") or 16
    return await _relay_generation(
        gateway,
        principal,
        model,
        body,
        operation="completions",
        path="/completions",
        prompt=texts_prompt_tokens(prompts, model.route.provider_model),
        max_output_tokens=bound * len(prompts) * (positive_int(body, "n") or 1),
    )


async def embeddings(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    items = _embedding_inputs(body.get("input"))
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
        )
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


protocol_route(router, "POST", "/v1/chat/completions", chat_completions)
protocol_route(router, "POST", "/v1/completions", completions)
protocol_route(router, "POST", "/v1/embeddings", embeddings)
protocol_route(router, "GET", "/v1/models", list_models)
protocol_route(router, "GET", "/v1/models/{model:path}", retrieve_model)
