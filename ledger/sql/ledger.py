"""``LedgerStore`` on SQL, once for both dialects: checks, the clock, one routine per method.

A backend supplies an ``SqlEngine``: the transactions around the routines and
a runner for its driver. SQLite's runs every write in its group-commit writer
thread and reads on a thread pool (``ledger.sqlite``); PostgreSQL's batches the
writes of one process into one transaction and reads from a connection pool
(``ledger.postgres``).
"""

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Generic, NamedTuple, Protocol, TypeVar

from ledger import checks
from ledger.clock import Clock, optional_to_ms, to_ms
from ledger.key_limits import KeyLimits
from ledger.models import (
    AccessKey,
    Account,
    Balance,
    CreditKind,
    CreditResult,
    CreditTransaction,
    HoldOutcome,
    HoldPlaced,
    KeyBudgetUse,
    OrgLedgerFigures,
    ReplyKey,
    ResponseOwner,
    SettleResult,
    StoredReply,
    Subscription,
    UsageDetails,
    UsageGroup,
    UsageRecord,
    UsageTotal,
)
from ledger.outbox import (
    AlertSettings,
    AutoRecharge,
    OutboxEvent,
    OutboxState,
    OutboxTopic,
    Recharge,
)
from ledger.sql import keys, outbox, reads, response_owners
from ledger.sql import operations as ops
from ledger.sql.holds_here import HoldsHere
from ledger.sql.routine import Routine

T = TypeVar("T")


class Write(NamedTuple, Generic[T]):
    """One write as an engine receives it (a tuple: it is made twice for every metered call)."""

    routine: Callable[[], Routine[T]]
    """Makes the routine; an engine may run it again (a batch rerun after a failure)."""
    org_ids: tuple[str, ...] = ()
    """The accounts it may change, which PostgreSQL locks before it runs."""
    call: str | None = None
    """The request id of the metered call it places or ends the hold of. A settle or
    release of a hold another process placed comes with no ``org_ids``: the engine
    finds the hold's org by this id."""
    durable: bool = True
    """Whether its commit must be on disk before its caller hears of it.

    Every write is, but placing and releasing a hold, which an engine may
    commit without waiting for the disk when a power loss that loses them
    also ends the calls they guard: SQLite's, whose file is on the gateway's
    own machine. Such a loss then costs the ledger a hold that never counted
    (its call died with the gateway) or a release (its hold stops counting at
    its expiry, ``SPU_HOLD_TTL_S``); the commit is seen by every other worker
    at once all the same, and reaches the disk with the next durable commit
    (the log is written in order). Money moves only in durable writes: a
    settled debit is on disk before anyone is told it was charged."""


class SqlEngine(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    def write(self, write: Write[T]) -> Awaitable[T]:
        """Run the routine in a write transaction; it has committed when the result is ready."""

    async def read(self, routine: Callable[[], Routine[T]]) -> T:
        """Run the routine in one read snapshot (an engine may make it again to retry)."""


class SqlLedger:
    """The storage protocol on an ``SqlEngine`` (see the module's doc)."""

    def __init__(self, engine: SqlEngine, clock: Clock, holds_here: HoldsHere) -> None:
        self._engine = engine
        self._clock = clock
        self._holds_here = holds_here

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _write(self, routine: Callable[[], Routine[T]], *org_ids: str) -> Awaitable[T]:
        return self._engine.write(Write(routine, org_ids))

    async def open(self) -> None:
        await self._engine.open()

    async def close(self) -> None:
        await self._engine.close()

    async def ping(self) -> None:
        await self._engine.ping()

    # money: accounts
    async def create_account(
        self,
        org_id: str,
        *,
        free_grant_units: int,
        user_id: str | None = None,
        user_name: str | None = None,
        user_email: str | None = None,
    ) -> Account:
        checks.free_grant(free_grant_units)
        routine = partial(
            ops.create_account,
            org_id,
            free_grant_units,
            user_id,
            user_name,
            user_email,
            self._now_ms(),
        )
        return await self._write(routine, org_id)

    async def get_account(self, org_id: str) -> Account:
        return await self._engine.read(partial(reads.load_account, org_id))

    async def list_accounts(self, *, limit: int = 100, after_org_id: str = "") -> list[Account]:
        return await self._engine.read(partial(reads.list_accounts, limit, after_org_id))

    async def set_stripe_customer(self, org_id: str, customer_id: str) -> str:
        routine = partial(ops.set_stripe_customer, org_id, customer_id, self._now_ms())
        return await self._write(routine, org_id)

    async def find_org_by_stripe_customer(self, customer_id: str) -> str | None:
        return await self._engine.read(partial(reads.org_by_stripe_customer, customer_id))

    # money: holds and settlement
    async def hold(
        self,
        org_id: str,
        amount_units: int,
        request_id: str,
        ttl_s: float,
        key_id: str | None = None,
        tokens: int = 0,
        *,
        reply_key: ReplyKey | None = None,
    ) -> HoldOutcome:
        checks.hold(amount_units, ttl_s, tokens)
        if reply_key is not None:
            checks.reply_key(reply_key)
        routine = partial(
            ops.hold,
            org_id,
            amount_units,
            request_id,
            ttl_s,
            key_id,
            tokens,
            reply_key,
            self._now_ms(),
        )
        self._holds_here.placing(request_id, org_id)
        placed: HoldOutcome | None = None
        try:
            placed = await self._engine.write(Write(routine, (org_id,), request_id, durable=False))
        finally:
            if isinstance(placed, HoldPlaced):
                self._holds_here.placed(placed)
            else:
                self._holds_here.ended(request_id)
        return placed

    def _ending(
        self, request_id: str, routine: Callable[[], Routine[T]], *, durable: bool
    ) -> Write[T]:
        org_id = self._holds_here.org_of(request_id)
        return Write(routine, () if org_id is None else (org_id,), request_id, durable)

    async def renew_holds(self, request_ids: Sequence[str], ttl_s: float) -> None:
        checks.renewal(ttl_s)
        if not request_ids:
            return
        now_ms = self._now_ms()
        expires_ms = now_ms + int(ttl_s * 1000)
        routine = partial(ops.renew_holds, json.dumps(list(request_ids)), expires_ms, now_ms)
        await self._engine.write(Write(routine))
        self._holds_here.renewed(request_ids, expires_ms)

    async def settle(
        self,
        request_id: str,
        actual_units: int,
        details: UsageDetails,
        *,
        reply: StoredReply | None = None,
    ) -> SettleResult:
        checks.settlement(actual_units)
        routine = partial(ops.settle, request_id, actual_units, details, reply, self._now_ms())
        try:
            return await self._engine.write(self._ending(request_id, routine, durable=True))
        finally:
            self._holds_here.ended(request_id)

    async def release(self, request_id: str) -> bool:
        routine = partial(ops.release, request_id, self._now_ms())
        try:
            return await self._engine.write(self._ending(request_id, routine, durable=False))
        finally:
            self._holds_here.ended(request_id)

    async def expire_holds(self, *, limit: int = 1000) -> int:
        now_ms = self._now_ms()
        self._holds_here.forget_expired(now_ms)
        org_ids = await self._engine.read(partial(reads.due_orgs, limit, now_ms))
        if not org_ids:
            return 0
        return await self._write(partial(ops.expire_holds, org_ids, limit, now_ms), *org_ids)

    async def forget_replies(self, *, limit: int = 1000) -> int:
        return await self._write(partial(ops.forget_replies, limit, self._now_ms()))

    async def balance(self, org_id: str) -> Balance:
        return await self._engine.read(partial(reads.balance, org_id, self._now_ms()))

    # money: credits
    async def _credit(
        self, transaction_id: str, org_id: str, kind: CreditKind, amount_units: int, reason: str
    ) -> CreditResult:
        checks.credit(amount_units)
        routine = partial(
            ops.credit, transaction_id, org_id, kind, amount_units, reason, self._now_ms()
        )
        return await self._write(routine, org_id)

    async def credit_purchase(
        self, session_id: str, org_id: str, amount_units: int, reason: str = "purchase"
    ) -> CreditResult:
        return await self._credit(
            f"purchase:{session_id}", org_id, CreditKind.PURCHASE, amount_units, reason
        )

    async def grant(
        self, org_id: str, amount_units: int, reason: str, idempotency_key: str
    ) -> CreditResult:
        return await self._credit(
            f"grant:{idempotency_key}", org_id, CreditKind.GRANT, amount_units, reason
        )

    async def refund_purchase(
        self, refund_id: str, org_id: str, amount_units: int, reason: str
    ) -> CreditResult:
        checks.refund(amount_units)
        routine = partial(
            ops.refund_purchase, f"refund:{refund_id}", org_id, amount_units, reason, self._now_ms()
        )
        return await self._write(routine, org_id)

    # money: plans
    async def set_subscription(self, org_id: str, subscription: Subscription) -> Account:
        checks.plan(subscription)
        routine = partial(ops.set_subscription, org_id, subscription, self._now_ms())
        return await self._write(routine, org_id)

    async def clear_subscription(self, org_id: str, *, as_of: datetime) -> Account:
        routine = partial(ops.clear_subscription, org_id, to_ms(as_of), self._now_ms())
        return await self._write(routine, org_id)

    # access keys
    async def add_access_key(self, key: AccessKey) -> None:
        checks.key_limits(key.limits)
        await self._write(partial(ops.add_access_key, key), key.org_id)

    async def access_key_by_hash(self, token_sha256: str) -> AccessKey | None:
        return await self._engine.read(partial(reads.access_key_by_hash, token_sha256))

    async def list_access_keys(self, org_id: str) -> list[AccessKey]:
        return await self._engine.read(partial(reads.list_access_keys, org_id))

    async def revoke_access_key(self, org_id: str, key_id: str) -> AccessKey | None:
        routine = partial(ops.revoke_access_key, org_id, key_id, self._now_ms())
        return await self._write(routine, org_id)

    async def set_key_limits(self, org_id: str, key_id: str, limits: KeyLimits) -> AccessKey | None:
        checks.key_limits(limits)
        routine = partial(keys.set_key_limits, org_id, key_id, limits, self._now_ms())
        return await self._write(routine, org_id)

    # processed webhook events
    async def event_seen(self, event_id: str) -> bool:
        return await self._engine.read(partial(reads.event_seen, event_id))

    async def mark_event(self, event_id: str, kind: str) -> bool:
        return await self._write(partial(ops.mark_event, event_id, kind, self._now_ms()))

    # response owners
    async def record_response(self, response_id: str, org_id: str, model: str) -> bool:
        checks.response(response_id, model)
        routine = partial(response_owners.record, response_id, org_id, model, self._now_ms())
        return await self._write(routine)

    async def response_owner(self, response_id: str) -> ResponseOwner | None:
        return await self._engine.read(partial(response_owners.find, response_id))

    async def forget_response(self, response_id: str, org_id: str) -> bool:
        return await self._write(partial(response_owners.forget, response_id, org_id))

    async def forget_responses_before(self, cutoff: datetime, *, limit: int = 1000) -> int:
        return await self._write(partial(response_owners.forget_before, to_ms(cutoff), limit))

    # alerts, auto-recharge and the outbox
    async def set_alerts(
        self, org_id: str, url: str, thresholds_units: Sequence[int], new_secret: str
    ) -> tuple[AlertSettings, bool]:
        checks.thresholds(thresholds_units)
        routine = partial(
            outbox.set_alerts, org_id, url, thresholds_units, new_secret, self._now_ms()
        )
        return await self._write(routine, org_id)

    async def clear_alerts(self, org_id: str) -> bool:
        return await self._write(partial(outbox.clear_alerts, org_id), org_id)

    async def alert_settings(self, org_id: str) -> AlertSettings | None:
        return await self._engine.read(partial(outbox.alert_settings, org_id))

    async def set_auto_recharge(self, org_id: str, settings: AutoRecharge) -> AutoRecharge:
        checks.auto_recharge(settings)
        routine = partial(outbox.set_auto_recharge, org_id, settings, self._now_ms())
        return await self._write(routine, org_id)

    async def clear_auto_recharge(self, org_id: str) -> bool:
        return await self._write(partial(outbox.clear_auto_recharge, org_id), org_id)

    async def auto_recharge(self, org_id: str) -> AutoRecharge | None:
        return await self._engine.read(partial(outbox.auto_recharge, org_id))

    async def claim_outbox(
        self, topic: OutboxTopic, *, limit: int, lease_s: float
    ) -> list[OutboxEvent]:
        routine = partial(outbox.claim, topic, limit, int(lease_s * 1000), self._now_ms())
        return await self._write(routine)

    async def outbox_delivered(self, event_id: str) -> bool:
        return await self._write(partial(outbox.delivered, event_id, self._now_ms()))

    async def outbox_failed(
        self, event_id: str, error: str, retry_at: datetime | None
    ) -> OutboxState | None:
        routine = partial(
            outbox.failed_attempt, event_id, error, optional_to_ms(retry_at), self._now_ms()
        )
        return await self._write(routine)

    async def requeue_outbox(self, org_id: str, event_id: str) -> bool:
        return await self._write(partial(outbox.requeue, org_id, event_id, self._now_ms()))

    async def alert_events(
        self, org_id: str, *, state: OutboxState | None = None, limit: int = 100
    ) -> list[OutboxEvent]:
        return await self._engine.read(partial(outbox.alert_events, org_id, state, limit))

    async def recharges(self, org_id: str, *, limit: int = 20) -> list[Recharge]:
        return await self._engine.read(partial(outbox.recharges, org_id, limit))

    async def recharge_started(self, recharge_id: str, payment_intent_id: str) -> bool:
        return await self._write(partial(outbox.recharge_started, recharge_id, payment_intent_id))

    async def fail_recharge(
        self, recharge_id: str, reason: str, payment_intent_id: str | None = None
    ) -> bool:
        routine = partial(
            outbox.fail_recharge, recharge_id, reason, payment_intent_id, self._now_ms()
        )
        return await self._write(routine)

    async def complete_recharge(
        self, recharge_id: str, payment_intent_id: str
    ) -> CreditResult | None:
        known = await self._engine.read(partial(outbox.recharge_row, recharge_id))
        if known is None:
            return None
        routine = partial(ops.complete_recharge, recharge_id, payment_intent_id, self._now_ms())
        return await self._write(routine, known.org_id)

    # reports
    async def usage_records(
        self,
        org_id: str | None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        model: str | None = None,
    ) -> list[UsageRecord]:
        return await self._engine.read(
            partial(reads.usage_records, org_id, start, end, limit, model)
        )

    async def usage_totals(
        self, org_id: str, group_by: UsageGroup, *, start: datetime, end: datetime
    ) -> list[UsageTotal]:
        return await self._engine.read(partial(reads.usage_totals, org_id, group_by, start, end))

    async def credit_transactions(
        self, org_id: str, *, limit: int = 100
    ) -> list[CreditTransaction]:
        return await self._engine.read(partial(reads.credit_transactions, org_id, limit))

    async def key_budget_use(self, org_id: str) -> list[KeyBudgetUse]:
        return await self._engine.read(partial(keys.key_budget_use, org_id, self._now_ms()))

    async def ledger_figures(self) -> list[OrgLedgerFigures]:
        return await self._engine.read(partial(reads.ledger_figures, self._now_ms()))
