"""OpenAI's Responses API: ``POST /v1/responses``, metered like every call.

Codex CLI and the OpenAI Agents SDK reach the gateway with its ``/v1`` as
their base URL and the org token as their API key. The request is checked,
its prompt estimated and its output bound taken (``max_output_tokens``, else
``SPU_DEFAULT_MAX_TOKENS``, capped by the model's own maximum) before anything
is held, then relayed natively or translated (``proxy.responses.relay``).
Errors come out in OpenAI's shape.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from proxy.errors import bad_request
from proxy.gateway import authenticated, gateway_of
from proxy.model_registry import ServedModel
from proxy.protocol_routes import protocol_route
from proxy.request_body import positive_int, read_json_object
from proxy.responses.anthropic_request import anthropic_request
from proxy.responses.chat_request import chat_request
from proxy.responses.items import checked_input
from proxy.responses.prompt import count_prompt_tokens
from proxy.responses.relay import (
    MESSAGES_HEADERS,
    ChatExchange,
    MessagesExchange,
    NativeExchange,
    ResponsesExchange,
    native_responses,
)
from proxy.responses.tools import unsupported

router = APIRouter()

OPERATION = "responses"
UNMETERABLE = {
    "background": "A background response (its usage arrives after the call has ended)",
    "conversation": "A stored conversation (this gateway does not serve the Conversations API)",
}
"""What a native upstream could do but the gateway cannot meter or keep to the caller's org."""


def _boolean(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad_request(f"'{name}' must be a boolean.", param=name)
    return value


def _check(body: dict[str, Any]) -> None:
    """The fields the route reads whatever the upstream, checked before anything is held."""
    _boolean(body, "stream")
    _boolean(body, "store")
    checked_input(body.get("input"))
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("'instructions' must be a string.", param="instructions")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise bad_request("'tools' must be an array.", param="tools")


def _check_native(body: dict[str, Any]) -> None:
    if _boolean(body, "background"):
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


def output_bound(body: dict[str, Any], model: ServedModel, default_max_tokens: int) -> int:
    """The hold's output bound: ``max_output_tokens``, else the default; at most the model's."""
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
        "prompt_tokens": count_prompt_tokens(body, provider_model),
        "max_output_tokens": max_output_tokens,
        "stream": body.get("stream") is True,
        "request": body,
    }
    exchange: ResponsesExchange
    if native_responses(model):
        _check_native(body)
        payload = {**body, "model": provider_model}
        exchange = NativeExchange(path="/responses", payload=payload, **common)
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
    return await gateway.relay.forward(exchange)


protocol_route(router, "POST", "/v1/responses", create_response)
