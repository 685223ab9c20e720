"""OpenAI's Responses API: ``POST /v1/responses``, metered like every call, and stored responses.

Codex CLI and the OpenAI Agents SDK reach the gateway with its ``/v1`` as
their base URL and the org token as their API key. The request is checked,
its prompt estimated and its output bound taken (``max_output_tokens``, else
``SPU_DEFAULT_MAX_TOKENS``, capped by the model's own maximum) before anything
is held, then relayed natively or translated (``proxy.responses.relay``).

``GET`` and ``DELETE /v1/responses/{id}`` and ``GET …/input_items`` are relayed
(unmetered: the upstream does not charge them) to the upstream that stored the
response, for the org that created it only (``proxy.responses.owners``).
Errors come out in OpenAI's shape.
"""

import logging
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from ledger import LedgerUnavailable
from proxy.auth import Principal
from proxy.call.relay import read_body, relayed
from proxy.errors import bad_request
from proxy.gateway import Gateway, authenticated, gateway_of
from proxy.model_registry import ServedModel
from proxy.protocol_routes import METERED_ANSWERS, ProtocolRouter, protocol_route
from proxy.request_body import flag, positive_int, read_json_object
from proxy.responses import schemas
from proxy.responses.anthropic_request import anthropic_request
from proxy.responses.chat_request import chat_request
from proxy.responses.items import checked_input
from proxy.responses.owners import owned_model, response_not_found
from proxy.responses.prompt import prompt_tokens
from proxy.responses.relay import (
    MESSAGES_HEADERS,
    ChatExchange,
    MessagesExchange,
    NativeExchange,
    ResponsesExchange,
    native_responses,
)
from proxy.responses.tools import unsupported

router = ProtocolRouter()
logger = logging.getLogger("spu.responses")

OPERATION = "responses"
UNMETERABLE = {
    "background": "A background response (its usage arrives after the call has ended)",
    "conversation": "A stored conversation (this gateway does not serve the Conversations API)",
}
"""What a native upstream could do but the gateway cannot meter or keep to the caller's org."""
STORED_ANSWERS = (404, 502, 503, 504)
"""What a request about a stored response may answer besides 401."""


def _check(body: dict[str, Any]) -> None:
    """The fields the route reads whatever the upstream, checked before anything is held."""
    flag(body, "stream")
    flag(body, "store")
    checked_input(body.get("input"))
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("'instructions' must be a string.", param="instructions")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad_request("'tools' must be an array.", param="tools")


def _check_native(body: dict[str, Any]) -> None:
    if flag(body, "background"):
        raise unsupported(UNMETERABLE["background"], "background")
    if body.get("conversation") is not None:
        raise unsupported(UNMETERABLE["conversation"], "conversation")
    for index, item in enumerate(body["input"] if isinstance(body["input"], list) else ()):
        if isinstance(item, dict) and item.get("type") == "item_reference":
            raise unsupported(
                "An item_reference (an item of a stored response, whose owner the gateway"
                " cannot check)",
                f"input[{index}]",
            )


async def _check_previous(gateway: Gateway, principal: Principal, body: dict[str, Any]) -> None:
    """A conversation continues only from a response of the caller's own org."""
    previous = body.get("previous_response_id")
    if previous is None:
        return
    if not isinstance(previous, str):
        raise bad_request("'previous_response_id' must be a string.", param="previous_response_id")
    await owned_model(
        gateway.store, gateway.registry, principal, previous, param="previous_response_id"
    )


def output_bound(body: dict[str, Any], model: ServedModel, default_max_tokens: int) -> int:
    """The hold's output bound: ``max_output_tokens`` (1 to ``MAX_TOKENS_LIMIT``, as every
    protocol's token bound), else the default; at most the model's maximum."""
    bound = positive_int(body, "max_output_tokens") or default_max_tokens
    if model.rates.max_output_tokens:
        bound = min(bound, model.rates.max_output_tokens)
    return bound


async def create_response(request: Request) -> Response:
    principal = await authenticated(request)
    gateway = gateway_of(request)
    body = await read_json_object(request)
    model = gateway.registry.get(body.get("model"))
    _check(body)
    max_output_tokens = output_bound(body, model, gateway.settings.default_max_tokens)
    provider_model = model.route.provider_model
    common: dict[str, Any] = {
        "principal": principal,
        "model": model,
        "operation": OPERATION,
        "prompt": prompt_tokens(body, provider_model),
        "max_output_tokens": max_output_tokens,
        "stream": body.get("stream") is True,
        "request": body,
    }
    exchange: ResponsesExchange
    if native_responses(model):
        _check_native(body)
        await _check_previous(gateway, principal, body)
        payload = {**body, "model": provider_model}
        owners = None if body.get("store") is False else gateway.store
        exchange = NativeExchange(path="/responses", payload=payload, owners=owners, **common)
    elif model.route.api_format == "anthropic":
        messages = anthropic_request(body, provider_model, max_tokens=max_output_tokens)
        exchange = MessagesExchange(
            path="/messages",
            payload=messages.body,
            headers=MESSAGES_HEADERS,
            tools=messages.tools,
            **common,
        )
    else:
        chat = chat_request(body, provider_model)
        exchange = ChatExchange(
            path="/chat/completions", payload=chat.body, tools=chat.tools, **common
        )
    return await gateway.relay.forward(exchange, request, body)


async def _stored(request: Request, method: str, tail: str = "") -> Response:
    """Relay a request about a stored response to its upstream, for its owner only."""
    principal = await authenticated(request)
    gateway = gateway_of(request)
    response_id: str = request.path_params["response_id"]
    model = await owned_model(gateway.store, gateway.registry, principal, response_id)
    if not native_responses(model):
        raise response_not_found(response_id)
    path = f"/responses/{quote(response_id)}{tail}"
    if request.url.query:
        path += f"?{request.url.query}"
    upstream, _latency_s = await gateway.upstreams.open(model, path, None, method=method)
    raw = await read_body(model, upstream)
    if method == "DELETE" and 200 <= upstream.status_code < 300:
        try:
            await gateway.store.forget_response(response_id, principal.org_id)
        except LedgerUnavailable:
            logger.warning("response %s was deleted but its owner is still recorded", response_id)
    return relayed(raw, upstream)


async def retrieve_response(request: Request) -> Response:
    return await _stored(request, "GET")


async def delete_response(request: Request) -> Response:
    return await _stored(request, "DELETE")


async def list_input_items(request: Request) -> Response:
    return await _stored(request, "GET", "/input_items")


protocol_route(
    router,
    "POST",
    "/v1/responses",
    create_response,
    summary="OpenAI Responses, streamed or not",
    request_schema=schemas.RESPONSE_REQUEST,
    answers=METERED_ANSWERS,
)
protocol_route(
    router,
    "GET",
    "/v1/responses/{response_id}",
    retrieve_response,
    summary="A stored response of the caller's org",
    answers=STORED_ANSWERS,
)
protocol_route(
    router,
    "DELETE",
    "/v1/responses/{response_id}",
    delete_response,
    summary="Delete a stored response of the caller's org",
    answers=STORED_ANSWERS,
)
protocol_route(
    router,
    "GET",
    "/v1/responses/{response_id}/input_items",
    list_input_items,
    summary="The input items of a stored response of the caller's org",
    answers=STORED_ANSWERS,
)
