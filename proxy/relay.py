"""Forward one metered OpenAI-format call and settle it: the shared body of every /v1 route."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi.responses import Response, StreamingResponse

from ledger import format_spus
from pricing import TokenUsage, count_text_tokens, usage_from_openai
from proxy.auth import Principal
from proxy.gateway import Gateway
from proxy.metering import MeteredCall
from proxy.model_registry import ServedModel
from proxy.openai_stream import OpenAIStreamTap


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


def _counted_usage(call: MeteredCall, text: str) -> TokenUsage:
    """What the upstream did not report, counted by the gateway (tiktoken)."""
    return TokenUsage(
        input_tokens=call.prompt_tokens_estimate,
        output_tokens=count_text_tokens(text, call.model.route.provider_model),
    )


def _relay_error(status: int, body: bytes, content_type: str | None) -> Response:
    return Response(body, status_code=status, media_type=content_type or "application/json")


async def forward(gateway: Gateway, spec: OpenAICall) -> Response:
    metered = await gateway.meter.open(
        spec.principal,
        spec.model,
        operation=spec.operation,
        source="openai",
        prompt_tokens=spec.prompt_tokens,
        max_output_tokens=spec.max_output_tokens,
    )
    try:
        upstream, latency_s = await gateway.upstreams.open(spec.model, spec.path, spec.payload)
    except BaseException:
        metered.release_detached()
        raise
    gateway.metrics.upstream_latency.labels(model=spec.model.name).observe(latency_s)
    if upstream.status_code >= 400:
        try:
            body = await upstream.aread()
        finally:
            await upstream.aclose()
        metered.release_detached()
        return _relay_error(upstream.status_code, body, upstream.headers.get("content-type"))
    if spec.stream:
        return _stream(gateway, metered, upstream, drop_usage_chunk=not spec.client_wants_usage)
    return await _complete(gateway, metered, upstream)


async def _complete(gateway: Gateway, metered: MeteredCall, upstream: Any) -> Response:
    try:
        raw = await upstream.aread()
    except BaseException:
        metered.release_detached()
        raise
    finally:
        await upstream.aclose()
    body = orjson.loads(raw)
    reported = usage_from_openai(body.get("usage")) if isinstance(body, dict) else None
    usage = reported or _counted_usage(metered, _choices_text(body))
    # Shielded: the debit must land even if this handler is cancelled meanwhile.
    result = await asyncio.shield(gateway.meter.spawn(metered.settle(usage)))
    return Response(
        raw,
        media_type="application/json",
        headers={
            "x-request-id": metered.request_id,
            "x-spu-charged": format_spus(result.record.charged_units),
            "x-spu-remaining": format_spus(result.available_units),
        },
    )


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
    gateway: Gateway, metered: MeteredCall, upstream: Any, *, drop_usage_chunk: bool
) -> StreamingResponse:
    tap = OpenAIStreamTap(drop_usage_chunk=drop_usage_chunk)

    async def relay() -> AsyncIterator[bytes]:
        status = "client_disconnected"
        try:
            async for piece in upstream.aiter_bytes():
                out = tap.feed(piece)
                if out:
                    yield out
            tail = tap.flush()
            if tail:
                yield tail
            status = "ok"
        except Exception:
            status = "upstream_interrupted"
            raise
        finally:
            gateway.meter.spawn(upstream.aclose())
            if tap.usage is not None:
                metered.settle_detached(usage_from_openai(tap.usage) or TokenUsage(), status=status)
            elif tap.content_events or status == "ok":
                metered.settle_detached(_counted_usage(metered, tap.generated_text), status=status)
            else:
                metered.release_detached()

    return StreamingResponse(
        relay(),
        media_type="text/event-stream",
        headers={
            "x-request-id": metered.request_id,
            "x-spu-held": format_spus(metered.hold_units),
            "cache-control": "no-cache",
        },
    )
