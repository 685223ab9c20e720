"""One metered call from its hold to its one ending: settle (what was used) or release.

A call ends exactly once, by ``settle`` or ``release``; a second ending is a
bug and raises. Settlement is idempotent by request id, so a ledger outage is
retried rather than lost, for about nine minutes (``SETTLE_ATTEMPTS``): its
hold is renewed meanwhile, and should it expire all the same, a late
settlement still charges the call. A release that fails leaves a hold that
stops counting when it expires.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from ledger import LedgerStore, LedgerUnavailable, SettleResult, StoredReply, UsageDetails
from pricing import TokenCounts, cost_pico_usd, units_for_cost
from proxy.auth import Principal
from proxy.call.receipt import Receipt
from proxy.model_registry import ServedModel
from proxy.server import request_log

if TYPE_CHECKING:
    from proxy.call.meter import Meter

logger = logging.getLogger("spu.metering")

ReplyMaker = Callable[[], Awaitable[StoredReply]]
"""Makes a keyed call's reply to keep, once what the call owes is known."""

SETTLE_ATTEMPTS = 24
SETTLE_FIRST_BACKOFF_S = 0.5
SETTLE_MAX_BACKOFF_S = 30.0
"""Waits double from 0.5 s up to 30 s: 24 attempts span about nine minutes of outage."""


class Ending(StrEnum):
    """How a call ended: the status its usage record keeps."""

    OK = "ok"
    CLIENT_DISCONNECTED = "client_disconnected"
    UPSTREAM_INTERRUPTED = "upstream_interrupted"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    """Cut by the gateway at the call's total deadline (``SPU_CALL_DEADLINE_S``)."""


@dataclass(slots=True)
class MeteredCall:
    meter: "Meter"
    principal: Principal
    model: ServedModel
    request_id: str
    operation: str
    source: str
    hold_units: int
    deadline: float
    """When the call is cut, in the event loop's time (``asyncio.timeout_at``)."""
    keeps_reply: bool = False
    """It came with an idempotency key: its settlement keeps its reply under the key."""
    started_s: float = field(default_factory=time.perf_counter)
    ended: bool = False

    def charge_for(
        self, counts: TokenCounts, *, status: Ending = Ending.OK
    ) -> tuple[int, UsageDetails]:
        """What ``counts`` cost in ledger units, and the usage record that goes with it."""
        cost = cost_pico_usd(counts, self.model.rates)
        details = UsageDetails(
            model=self.model.name,
            provider=self.model.provider,
            key_id=self.principal.key_id,
            operation=self.operation,
            source=self.source,
            prompt_tokens=counts.prompt_tokens,
            completion_tokens=counts.output_tokens,
            total_tokens=counts.total_tokens,
            cost_pico_usd=cost,
            latency_ms=int((time.perf_counter() - self.started_s) * 1000),
            status=str(status),
        )
        return units_for_cost(cost, self.meter.policy), details

    async def settle(
        self,
        counts: TokenCounts,
        *,
        status: Ending = Ending.OK,
        reply: StoredReply | None = None,
    ) -> SettleResult:
        """Debit what the call used and write its usage record (idempotent by request id);
        a keyed call's ``reply`` is kept in the same transaction."""
        self._end()
        units, details = self.charge_for(counts, status=status)
        return await self._debit(units, details, reply)

    async def settle_receipt(
        self,
        counts: TokenCounts,
        *,
        status: Ending = Ending.OK,
        reply: StoredReply | None = None,
    ) -> Receipt:
        """Settle and return what tells the client what it paid (a reply's headers, a
        stream's last bytes); a keyed call's ``reply`` is kept in the same transaction.

        Awaited, so that a balance read after the answer sees its debit; shielded,
        so that the debit lands even if the handler (or the stream) is cancelled
        meanwhile.
        """
        settling = self.meter.endings.spawn(self.settle(counts, status=status, reply=reply))
        result = await asyncio.shield(settling)
        return Receipt.of(self.request_id, result)

    async def end(
        self,
        owed: Awaitable[TokenCounts | None],
        *,
        status: Ending = Ending.OK,
        reply: ReplyMaker | None = None,
    ) -> SettleResult | None:
        """Settle what ``owed`` works out, keeping the reply ``reply`` makes once that is known;
        or release the hold when ``owed`` is None (or cannot be worked out), answering None."""
        try:
            counts = await owed
        except Exception:
            logger.exception("could not work out what %s owes", self.request_id)
            counts = None
        if counts is None:
            await self.release()
            return None
        kept = None if reply is None else await reply()
        return await self.settle(counts, status=status, reply=kept)

    def end_detached(
        self,
        owed: Awaitable[TokenCounts | None],
        *,
        status: Ending = Ending.OK,
        reply: ReplyMaker | None = None,
    ) -> None:
        """``end`` in a tracked background task (a stream's end that nobody waits for)."""
        self.meter.endings.spawn(self.end(owed, status=status, reply=reply))

    async def release(self) -> None:
        """Nothing was produced: free the hold, debit nothing."""
        self._end()
        try:
            await self.meter.store.release(self.request_id)
        except LedgerUnavailable:
            logger.warning("release of %s failed; its hold expires on its own", self.request_id)
        finally:
            self.meter.renewal.discard(self.request_id)

    def release_detached(self) -> None:
        self.meter.endings.spawn(self.release())

    async def _debit(
        self, units: int, details: UsageDetails, reply: StoredReply | None
    ) -> SettleResult:
        try:
            result = await settle_with_retry(
                self.meter.store, self.request_id, units, details, reply
            )
        finally:
            self.meter.renewal.discard(self.request_id)
        self.meter.metrics.spus_debited_by.of(self.model.name).inc(units)
        request_log.note(charged_units=units)
        return result

    def _end(self) -> None:
        if self.ended:
            raise RuntimeError(f"metered call {self.request_id} ended twice")
        self.ended = True
        cap = self.meter.in_flight_cap
        cap.leave(self.principal.org_id)
        cap.call_ended(time.perf_counter() - self.started_s)


async def settle_with_retry(
    store: LedgerStore,
    request_id: str,
    units: int,
    details: UsageDetails,
    reply: StoredReply | None,
) -> SettleResult:
    """Settlement is idempotent by request id, so a ledger hiccup is retried, not lost."""
    backoff_s = SETTLE_FIRST_BACKOFF_S
    for attempt in range(1, SETTLE_ATTEMPTS + 1):
        try:
            return await store.settle(request_id, units, details, reply=reply)
        except LedgerUnavailable:
            if attempt == SETTLE_ATTEMPTS:
                raise
            logger.warning("settle of %s failed (attempt %d); retrying", request_id, attempt)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, SETTLE_MAX_BACKOFF_S)
    raise AssertionError("unreachable")
