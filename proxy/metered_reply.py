"""An upstream's answer to a metered call: opened, read, settled and labelled the same way
on every route (OpenAI's in ``proxy.relay``, Anthropic's in ``proxy.routes.anthropic``).

Whatever goes wrong before the debit releases the hold, so a failed call never
keeps credit reserved; only the body each route sends back differs.
"""

from typing import Any

import httpx
import orjson
from fastapi.responses import Response

from ledger import format_spus
from pricing import TokenCounts
from proxy.call.metered_call import MeteredCall
from proxy.errors import ApiError
from proxy.gateway import Gateway
from proxy.model_registry import ServedModel
from proxy.upstream.clients import upstream_failure
from proxy.upstream.network import UpstreamResponse


async def open_upstream(
    gateway: Gateway,
    metered: MeteredCall,
    path: str,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> UpstreamResponse:
    """Send the held call upstream; the hold is released if it cannot even be sent."""
    try:
        upstream, latency_s = await gateway.upstreams.open(
            metered.model, path, payload, headers=headers
        )
    except BaseException:
        metered.release_detached()
        raise
    gateway.metrics.upstream_latency.labels(model=metered.model.name).observe(latency_s)
    return upstream


async def read_body(model: ServedModel, upstream: UpstreamResponse) -> bytes:
    """The whole body, the response closed; a broken read is the upstream's 502 or 504."""
    try:
        return await upstream.aread()
    except httpx.HTTPError as error:
        raise upstream_failure(model, error) from error
    finally:
        await upstream.aclose()


def relayed(
    raw: bytes, upstream: UpstreamResponse, headers: dict[str, str] | None = None
) -> Response:
    """The upstream's body as it came, with its status and content type."""
    return Response(
        raw,
        status_code=upstream.status_code,
        media_type=upstream.headers.get("content-type", "application/json"),
        headers=headers,
    )


async def read_refusal(
    metered: MeteredCall, upstream: UpstreamResponse, relayed_headers: tuple[str, ...]
) -> tuple[bytes, dict[str, str]]:
    """The upstream refused or failed: nothing was produced, so nothing is debited.

    Returns its body and the headers to answer with: the request id and those of
    ``relayed_headers`` it sent (a client SDK's retry advice).
    """
    metered.release_detached()
    raw = await read_body(metered.model, upstream)
    headers = {name: upstream.headers[name] for name in relayed_headers if name in upstream.headers}
    headers["x-request-id"] = metered.request_id
    return raw, headers


def invalid_response(model: ServedModel) -> ApiError:
    return ApiError(
        502,
        f"The upstream for '{model.name}' answered with invalid JSON.",
        error_type="api_error",
        code="upstream_invalid_response",
    )


async def read_json(metered: MeteredCall, upstream: UpstreamResponse) -> tuple[bytes, Any]:
    """The answer's bytes and their JSON; on any failure the hold is released first."""
    try:
        raw = await read_body(metered.model, upstream)
        return raw, orjson.loads(raw)
    except BaseException as error:
        metered.release_detached()
        if isinstance(error, orjson.JSONDecodeError):
            raise invalid_response(metered.model) from error
        raise


async def settle_reply(metered: MeteredCall, usage: TokenCounts) -> dict[str, str]:
    """Debit the call and return the headers that tell the client what it was charged."""
    return await metered.settle_receipt(usage)


def stream_headers(metered: MeteredCall) -> dict[str, str]:
    """A stream's headers go out before its cost is known: they say what is held."""
    return {
        "x-request-id": metered.request_id,
        "x-spu-held": format_spus(metered.hold_units),
        "cache-control": "no-cache",
    }
