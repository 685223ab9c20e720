"""The one path of a metered call, whatever its wire protocol: hold → send → answer → settle.

A protocol's route works out what the request is: an ``Exchange``, which
holds the caller, the model, the prompt's tokens (``pricing.PromptTokens``:
its cheap bound, and its exact count on demand) and the upstream request, and
knows how its protocol reads an answer and sends it back. ``Relay.forward``
then does what every metered call does:

1. hold the worst case (``Meter.open``: the bound, else the exact count; 402,
   429 or 503 when it cannot be held);
2. send the request upstream (a failure to send releases the hold: 502 or 504, also
   when the call's total deadline passes first);
3. relay an upstream's refusal in the protocol's shape, releasing the hold;
4. relay a stream through the exchange's tap, which settles when the upstream ends,
   before the stream's last bytes, so they carry the receipt;
5. or read the whole reply, settle what it used, and answer with the receipt.

An exchange may also have ledger work the client must not outrun, done before
the client sees any of the answer (``before_reply``, ``before_stream``): the
Responses API records which org owns the response id the answer names, so that
the id is never handed out before the gateway knows whose it is.

A request with an ``Idempotency-Key`` whose key is taken stops at step 1: it
gets the kept reply, or a 409 or 422 (``proxy.call.idempotency``); a keyed
call's settlement keeps the reply it answered with.

Whatever goes wrong before the debit releases the hold, so a failed call never
keeps credit reserved.
"""

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import httpx
import orjson
from fastapi import Request
from fastapi.responses import Response

from ledger import KeyInUse, format_spus
from pricing import PromptTokens, TokenCounts
from proxy.auth import Principal
from proxy.call.idempotency import Idempotency, answer_for_taken_key
from proxy.call.meter import Meter
from proxy.call.metered_call import MeteredCall
from proxy.call.stream import MeteredStreamResponse, StreamTap
from proxy.errors import RETRY_ADVISED_STATUSES, ApiError, retry_after_headers
from proxy.model_registry import ServedModel
from proxy.server.give_way import upstream_wait
from proxy.server.metrics import Metrics
from proxy.upstream.clients import Upstreams, upstream_failure
from proxy.upstream.network import UpstreamResponse

JSON = "application/json"
UPSTREAM_RETRY_AFTER_S = 1.0
"""The advice relayed with a provider's 429 or 503 that gave none: the SDKs' own first backoff."""
RETRY_HEADERS = {"retry-after", "retry-after-ms"}
NOTHING_ANSWERED = "the upstream had not finished its answer, and nothing is charged"


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange(ABC):
    """One metered request of one protocol, as its route worked it out before anything is held."""

    principal: Principal
    model: ServedModel
    operation: str
    prompt: PromptTokens
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
    async def reply(self, raw: bytes, body: Any) -> tuple[bytes, TokenCounts]:
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
    def __init__(
        self, meter: Meter, upstreams: Upstreams, metrics: Metrics, idempotency: Idempotency
    ) -> None:
        self._meter = meter
        self._upstreams = upstreams
        self._metrics = metrics
        self._idempotency = idempotency

    async def forward(self, call: Exchange, request: Request, body: dict[str, Any]) -> Response:
        """Run the call ``request`` asked for, ``body`` being its JSON as the route parsed it
        (its ``Idempotency-Key`` is honoured here)."""
        opened = await self._meter.open(
            call.principal,
            call.model,
            operation=call.operation,
            source=call.source,
            prompt=call.prompt,
            max_output_tokens=call.max_output_tokens,
            reply_key=self._idempotency.key_of(request, body),
        )
        if isinstance(opened, KeyInUse):
            return answer_for_taken_key(opened)
        metered = opened
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
                capture=self._idempotency.capture() if metered.keeps_reply else None,
            )
        return await self._complete(metered, upstream, call)

    async def _send(self, metered: MeteredCall, call: Exchange) -> UpstreamResponse:
        try:
            async with (
                asyncio.timeout_at(metered.deadline),
                upstream_wait(working_after=not call.stream),
            ):
                upstream, latency_s = await self._upstreams.open(
                    call.model, call.path, call.payload, headers=call.headers
                )
        except BaseException as error:
            metered.release_detached()
            if isinstance(error, TimeoutError):
                raise self._meter.past_deadline(NOTHING_ANSWERED) from error
            raise
        self._metrics.upstream_latency_by.of(call.model.name).observe(latency_s)
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
        if upstream.status_code in RETRY_ADVISED_STATUSES and not headers.keys() & RETRY_HEADERS:
            headers.update(retry_after_headers(UPSTREAM_RETRY_AFTER_S))
        return call.refusal(raw, upstream, headers)

    async def _complete(
        self, metered: MeteredCall, upstream: UpstreamResponse, call: Exchange
    ) -> Response:
        try:
            async with asyncio.timeout_at(metered.deadline):
                raw = await read_body(call.model, upstream)
            body = orjson.loads(raw)
            content, counts = await call.reply(raw, body)
        except BaseException as error:
            metered.release_detached()
            if isinstance(error, TimeoutError):
                raise self._meter.past_deadline(NOTHING_ANSWERED) from error
            if isinstance(error, orjson.JSONDecodeError):
                raise invalid_response(call.model) from error
            raise
        # The settlement is not under the deadline: a call answered in time is charged in full.
        reply = self._idempotency.kept(JSON, content) if metered.keeps_reply else None
        receipt = await metered.settle_receipt(counts, reply=reply)
        # After the settlement, which a client gone meanwhile must not cancel.
        pending = call.before_reply(body)
        if pending is not None:
            await pending
        return Response(content, media_type=JSON, headers=receipt.headers())


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
