"""Hold → forward → settle: the ledger side of one metered call.

A ``MeteredCall`` is opened with a hold for the worst case and ends exactly
once, by ``settle`` (what was used) or ``release`` (nothing was produced).
Streams end after their handler has returned, and a client that disconnects
cancels the task that relays them, so endings run as tracked background
tasks that cancellation cannot interrupt and shutdown waits for.
"""

import asyncio
import logging
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ledger import (
    HoldRefused,
    LedgerStore,
    LedgerUnavailable,
    SettleResult,
    UsageDetails,
    format_spus,
)
from pricing import (
    PricingPolicy,
    TokenCounts,
    affordable_max_tokens,
    cost_pico_usd,
    units_for_cost,
    worst_case_units,
)
from proxy import request_log
from proxy.auth import Principal
from proxy.errors import ApiError
from proxy.model_registry import ServedModel
from proxy.observability import Metrics

logger = logging.getLogger("spu.metering")

T = TypeVar("T")

SETTLE_ATTEMPTS = 6
SETTLE_FIRST_BACKOFF_S = 0.5
DEBIT_LINGER_S = 0.005
"""How long a background debit may wait to share the next hold's ledger transaction."""


def ledger_down() -> ApiError:
    return ApiError(
        503,
        "The credit ledger is unavailable, so this call cannot be metered; try again shortly.",
        error_type="api_error",
        code="ledger_unavailable",
    )


@dataclass(slots=True)
class MeteredCall:
    meter: "Meter"
    principal: Principal
    model: ServedModel
    request_id: str
    operation: str
    source: str
    prompt_tokens_estimate: int
    hold_units: int
    started_s: float = field(default_factory=time.perf_counter)
    ended: bool = False

    def charge_for(self, usage: TokenCounts, *, status: str = "ok") -> tuple[int, UsageDetails]:
        """What ``usage`` costs in ledger units, and the usage record that goes with it."""
        cost = cost_pico_usd(usage, self.model.rates)
        details = UsageDetails(
            model=self.model.name,
            provider=self.model.provider,
            key_id=self.principal.key_id,
            operation=self.operation,
            source=self.source,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.output_tokens,
            total_tokens=usage.prompt_tokens + usage.output_tokens,
            cost_pico_usd=cost,
            latency_ms=int((time.perf_counter() - self.started_s) * 1000),
            status=status,
        )
        return units_for_cost(cost, self.meter.policy), details

    async def settle(self, usage: TokenCounts, *, status: str = "ok") -> SettleResult:
        """Debit what the call used and write its usage record (idempotent by request id)."""
        self._end()
        units, details = self.charge_for(usage, status=status)
        return await self._debit(units, details)

    async def _debit(
        self, units: int, details: UsageDetails, *, linger: bool = False
    ) -> SettleResult:
        try:
            if linger:
                await self.meter.next_hold()
            result = await self.meter.settle_with_retry(self.request_id, units, details)
        finally:
            self.meter.ended_in_ledger()
        self.meter.metrics.spus_debited.labels(model=self.model.name).inc(units)
        request_log.note(charged_units=units)
        return result

    async def release(self) -> None:
        """Nothing was produced: free the hold, debit nothing."""
        self._end()
        try:
            await self.meter.store.release(self.request_id)
        except LedgerUnavailable:
            logger.warning("release of %s failed; its hold expires on its own", self.request_id)
        finally:
            self.meter.ended_in_ledger()

    def settle_detached(self, usage: TokenCounts, *, status: str = "ok") -> int:
        """Settle in a tracked background task (a stream's end); returns the units it debits.

        The debit lingers until the next hold is sent, to share its transaction.
        """
        self._end()
        units, details = self.charge_for(usage, status=status)
        self.meter.spawn(self._debit(units, details, linger=True))
        return units

    def release_detached(self) -> None:
        self.meter.spawn(self.release())

    def _end(self) -> None:
        if self.ended:
            raise RuntimeError(f"metered call {self.request_id} ended twice")
        self.ended = True
        self.meter.leave(self.principal.org_id)


class Meter:
    def __init__(
        self,
        store: LedgerStore,
        policy: PricingPolicy,
        *,
        hold_ttl_s: float,
        max_in_flight_per_org: int,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.policy = policy
        self.metrics = metrics
        self._hold_ttl_s = hold_ttl_s
        self._max_in_flight = max_in_flight_per_org
        self._in_flight: dict[str, int] = {}
        self._endings: set[asyncio.Task[Any]] = set()
        self._lingering: asyncio.Future[None] | None = None
        self._underway = 0
        """Calls from their hold until their ending is written (wider than the in-flight cap's
        count, which a call leaves when its response is done)."""

    async def open(
        self,
        principal: Principal,
        model: ServedModel,
        *,
        operation: str,
        source: str,
        prompt_tokens: int,
        max_output_tokens: int,
    ) -> MeteredCall:
        """Place the worst-case hold, or refuse with 402, 429 or 503 (fail closed)."""
        org_id = principal.org_id
        request_log.note(org_id=org_id, model=model.name)
        if self._in_flight.get(org_id, 0) >= self._max_in_flight:
            raise ApiError(
                429,
                f"Too many requests in flight for this organization (limit {self._max_in_flight}).",
                error_type="rate_limit_error",
                code="too_many_in_flight",
            )
        needed = worst_case_units(prompt_tokens, max_output_tokens, model.rates, self.policy)
        request_id = f"req_{secrets.token_hex(16)}"
        self._in_flight[org_id] = self._in_flight.get(org_id, 0) + 1
        self._underway += 1
        self._release_lingering()
        try:
            placed = await self.store.hold(
                org_id, needed, request_id, self._hold_ttl_s, key_id=principal.key_id
            )
        except LedgerUnavailable as error:
            self.leave(org_id)
            self.ended_in_ledger()
            raise ledger_down() from error
        except BaseException:
            self.leave(org_id)
            self.ended_in_ledger()
            raise
        if isinstance(placed, HoldRefused):
            self.leave(org_id)
            self.ended_in_ledger()
            self.metrics.refusals.labels(model=model.name).inc()
            raise _insufficient(placed, prompt_tokens, max_output_tokens, model, self.policy)
        overhead_s = request_log.elapsed_s()
        if overhead_s is not None:
            self.metrics.gateway_overhead.labels(route=operation).observe(overhead_s)
        return MeteredCall(
            meter=self,
            principal=principal,
            model=model,
            request_id=request_id,
            operation=operation,
            source=source,
            prompt_tokens_estimate=prompt_tokens,
            hold_units=needed,
        )

    def next_hold(self) -> "asyncio.Future[None]":
        """Resolves when the next hold is sent to the ledger, or after ``DEBIT_LINGER_S``.

        A background debit that waits for it is queued right behind that hold, so
        the ledger's group commit writes both in one transaction: one fsync on a
        request's path instead of its hold waiting out the previous call's debit.
        """
        if self._lingering is None:
            loop = asyncio.get_running_loop()
            self._lingering = loop.create_future()
            loop.call_later(DEBIT_LINGER_S, self._release_lingering)
        return self._lingering

    def _release_lingering(self) -> None:
        lingering, self._lingering = self._lingering, None
        if lingering is not None and not lingering.done():
            lingering.set_result(None)

    def alone(self) -> bool:
        """Whether at most one call is underway: its ledger writes then have none to share a
        commit with, and the SQLite ledger commits them without a thread hand-off."""
        return self._underway <= 1

    def ended_in_ledger(self) -> None:
        self._underway -= 1

    def leave(self, org_id: str) -> None:
        remaining = self._in_flight.get(org_id, 0) - 1
        if remaining > 0:
            self._in_flight[org_id] = remaining
        else:
            self._in_flight.pop(org_id, None)

    def spawn(self, ending: Coroutine[Any, Any, T]) -> "asyncio.Task[T]":
        """Run a call's ending in the background; the request's log line waits for it."""
        task = asyncio.get_running_loop().create_task(ending)
        self._endings.add(task)
        task.add_done_callback(self._ending_done)
        request_log.defer_until(task)
        return task

    def _ending_done(self, task: "asyncio.Task[Any]") -> None:
        self._endings.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("metered call ending failed", exc_info=task.exception())

    async def settle_with_retry(
        self, request_id: str, units: int, details: UsageDetails
    ) -> SettleResult:
        """Settlement is idempotent by request id, so a ledger hiccup is retried, not lost."""
        backoff_s = SETTLE_FIRST_BACKOFF_S
        for attempt in range(1, SETTLE_ATTEMPTS + 1):
            try:
                return await self.store.settle(request_id, units, details)
            except LedgerUnavailable:
                if attempt == SETTLE_ATTEMPTS:
                    raise
                logger.warning("settle of %s failed (attempt %d); retrying", request_id, attempt)
                await asyncio.sleep(backoff_s)
                backoff_s *= 2
        raise AssertionError("unreachable")

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    async def drain(self, timeout_s: float) -> None:
        """Wait for every detached settlement or release (graceful shutdown)."""
        self._release_lingering()
        if self._endings:
            await asyncio.wait(set(self._endings), timeout=timeout_s)


def _insufficient(
    refusal: HoldRefused,
    prompt_tokens: int,
    max_output_tokens: int,
    model: ServedModel,
    policy: PricingPolicy,
) -> ApiError:
    affordable = affordable_max_tokens(refusal.available_units, prompt_tokens, model.rates, policy)
    available, needed = format_spus(refusal.available_units), format_spus(refusal.needed_units)
    advice = (
        f" The largest max_tokens you can afford now is {affordable}."
        if affordable > 0
        else " Not even the prompt is affordable now; buy credits or wait for your allowance."
    )
    return ApiError(
        402,
        f"Insufficient SPU credits: {available} SPUs available, {needed} SPUs needed for this"
        f" request ({prompt_tokens} prompt tokens + up to {max_output_tokens} output tokens)."
        + advice,
        error_type="insufficient_quota",
        code="insufficient_credits",
        extra={
            "available_spus": available,
            "needed_spus": needed,
            "max_affordable_tokens": affordable,
        },
    )
