"""The one path of a metered call, whatever its wire protocol: hold → send → answer → settle.

A protocol's route works out what the request is: an ``Exchange``, which
holds the caller, the model, the estimate and the upstream request, and
knows how its protocol reads an answer and sends it back. ``Relay.forward``
then does what every metered call does:

1. hold the worst case (``Meter.open``: 402, 429 or 503 when it cannot be held);
2. send the request upstream (a failure to send releases the hold: 502 or 504);
3. relay an upstream's refusal in the protocol's shape, releasing the hold;
4. relay a stream through the exchange's tap, which settles when the upstream ends,
   before the stream's last bytes, so they carry the receipt;
5. or read the whole reply, settle what it used, and answer with the receipt.

An exchange may also have ledger work the client must not outrun, done before
the client sees any of the answer (``before_reply``, ``before_stream``): the
Responses API records which org owns the response id the answer names, so that
the id is never handed out before the gateway knows whose it is.

Whatever goes wrong before the debit releases the hold, so a failed call never
keeps credit reserved.
"""

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import httpx
import orjson
from fastapi.responses import Response

from ledger import format_spus
from pricing import TokenCounts
from proxy.auth import Principal
from proxy.call.meter import Meter
from proxy.call.metered_call import MeteredCall
from proxy.call.stream import MeteredStreamResponse, StreamTap
from proxy.errors import ApiError
from proxy.model_registry import ServedModel
from proxy.server.metrics import Metrics
from proxy.upstream.clients import Upstreams, upstream_failure
from proxy.upstream.network import UpstreamResponse


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange(ABC):
    """One metered request of one protocol, as its route worked it out before anything is held."""

    principal: Principal
    model: ServedModel
    operation: str
    prompt_tokens: int
    max_output_tokens: int
    stream: bool
    path: str
    """Where the request goes on the model's upstream, e.g. ``/chat/completions``."""
    payload: dict[str, Any]
    headers: dict[str, str] | None = None

    source: ClassVar[str]
    """The protocol the client spoke, as usage records keep it."""
    relayed_error_headers: ClassVar[tuple[str, ...]]
    """Headers of an upstream refusal the client's SDK reads (its retry advice)."""

    @abstractmethod
    def refusal(self, raw: bytes, upstream: UpstreamResponse, headers: dict[str, str]) -> Response:
        """The client's answer to an upstream's refusal (status 400 or more), nothing charged."""

    @abstractmethod
    def reply(self, raw: bytes, body: Any) -> tuple[bytes, TokenCounts]:
        """The client's body for a complete reply, and the counts to charge for it."""

    @abstractmethod
    def tap(self) -> StreamTap:
        """Reads (and if need be translates) the upstream's stream as it is relayed."""

    def before_reply(self, body: Any) -> Awaitable[None] | None:
        """Work to finish before a complete reply (``body``, parsed) is answered; none here."""
        return None

    def before_stream(self, tap: StreamTap) -> Awaitable[None] | None:
        """Work to finish before the stream's first bytes (as ``tap`` read them) are sent."""
        return None


class Relay:
    def __init__(self, meter: Meter, upstreams: Upstreams, metrics: Metrics) -> None:
        self._meter = meter
        self._upstreams = upstreams
        self._metrics = metrics

    async def forward(self, call: Exchange) -> Response:
        metered = await self._meter.open(
            call.principal,
            call.model,
            operation=call.operation,
            source=call.source,
            prompt_tokens=call.prompt_tokens,
            max_output_tokens=call.max_output_tokens,
        )
        upstream = await self._send(metered, call)
        if upstream.status_code >= 400:
            return await self._refused(metered, upstream, call)
        if call.stream:
            tap = call.tap()
            return MeteredStreamResponse(
                metered,
                upstream,
                tap,
                # A stream's headers go out before its cost is known: they say what is held.
                headers={
                    "x-request-id": metered.request_id,
                    "x-spu-held": format_spus(metered.hold_units),
                    "cache-control": "no-cache",
                },
                before_first_bytes=partial(call.before_stream, tap),
            )
        return await self._complete(metered, upstream, call)

    async def _send(self, metered: MeteredCall, call: Exchange) -> UpstreamResponse:
        try:
            upstream, latency_s = await self._upstreams.open(
                call.model, call.path, call.payload, headers=call.headers
            )
        except BaseException:
            metered.release_detached()
            raise
        self._metrics.upstream_latency.labels(model=call.model.name).observe(latency_s)
        return upstream

    async def _refused(
        self, metered: MeteredCall, upstream: UpstreamResponse, call: Exchange
    ) -> Response:
        """The upstream refused or failed: nothing was produced, so nothing is debited."""
        metered.release_detached()
        raw = await read_body(call.model, upstream)
        headers = {
            name: upstream.headers[name]
            for name in call.relayed_error_headers
            if name in upstream.headers
        }
        headers["x-request-id"] = metered.request_id
        return call.refusal(raw, upstream, headers)

    async def _complete(
        self, metered: MeteredCall, upstream: UpstreamResponse, call: Exchange
    ) -> Response:
        try:
            raw = await read_body(call.model, upstream)
            body = orjson.loads(raw)
            content, counts = call.reply(raw, body)
        except BaseException as error:
            metered.release_detached()
            if isinstance(error, orjson.JSONDecodeError):
                raise invalid_response(call.model) from error
            raise
        receipt = await metered.settle_receipt(counts)
        # After the settlement, which a client gone meanwhile must not cancel.
        pending = call.before_reply(body)
        if pending is not None:
            await pending
        return Response(content, media_type="application/json", headers=receipt.headers())


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


def invalid_response(model: ServedModel) -> ApiError:
    return ApiError(
        502,
        f"The upstream for '{model.name}' answered with invalid JSON.",
        error_type="api_error",
        code="upstream_invalid_response",
    )
