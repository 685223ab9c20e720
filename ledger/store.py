"""The storage protocol every ledger backend implements, split by concern.

Each method is one atomic operation; callers never compose transactions.
Idempotent writes take the id that makes them so (request id, checkout
session id, idempotency key, event id), because every caller may retry.

A caller asks for the part it needs (``verify`` reads ``LedgerReports``, token
lookups need ``AccessKeyStore``); ``LedgerStore`` is their union, for the
gateway, which needs everything.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ledger.key_limits import KeyLimits
from ledger.models import (
    AccessKey,
    Account,
    Balance,
    CreditResult,
    CreditTransaction,
    HoldOutcome,
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


class StoreLifecycle(Protocol):
    async def open(self) -> None:
        """Connect and bring the schema or indexes up to date (idempotent)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``LedgerUnavailable`` when the store cannot serve a hold right now."""


class MoneyLedger(Protocol):
    """Accounts and every change to their money: holds, settlements, credits, plans."""

    async def create_account(
        self,
        org_id: str,
        *,
        free_grant_units: int,
        user_id: str | None = None,
        user_name: str | None = None,
        user_email: str | None = None,
    ) -> Account:
        """Create the org's account with its free-tier grant, or return the existing one."""

    async def get_account(self, org_id: str) -> Account:
        """Raise ``AccountNotFound`` for an unknown org."""

    async def list_accounts(self, *, limit: int = 100, after_org_id: str = "") -> list[Account]: ...

    async def set_stripe_customer(self, org_id: str, customer_id: str) -> str:
        """Record the org's Stripe customer unless it has one; return the one it has."""

    async def find_org_by_stripe_customer(self, customer_id: str) -> str | None: ...

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
        """Reserve ``amount_units`` until ``ttl_s`` from now if the org's available credits and
        the key's limits allow.

        ``tokens`` is the call's worst case in tokens, which a key's tpm counts until
        the settlement trues it up (the settled ``total_tokens``).

        With a ``reply_key``, the hold also claims the key for this call, or is
        not placed because the key is taken (``KeyInUse``): by a call that
        settled (its kept reply), one still open, or another request. A key
        whose call ended without settling (released, or expired unsettled:
        its worker died) is free again, and so is one kept longer than its
        ``keep_s``. A refused hold claims nothing.
        """

    async def renew_holds(self, request_ids: Sequence[str], ttl_s: float) -> None:
        """Move the expiry of those holds still open and unexpired to ``ttl_s`` from now.

        The worker running a call renews its hold, so only a crashed worker's
        holds ever expire. A hold already past its expiry stays expired: it
        stopped counting, and another hold may have taken its credit since.
        """

    async def settle(
        self,
        request_id: str,
        actual_units: int,
        details: UsageDetails,
        *,
        reply: StoredReply | None = None,
    ) -> SettleResult:
        """Debit what the call used and write its usage record, once per request id.

        A hold past its expiry (swept or not) is settled all the same: it
        reserves nothing any more, so the call is paid from what no other hold
        reserves, and the rest becomes debt. ``reply`` is kept under the hold's
        idempotency key in the same transaction, so a call is never settled
        without its reply kept, nor its reply kept unpaid. Raises
        ``HoldNotOpen`` for a released hold.
        """

    async def release(self, request_id: str) -> bool:
        """End an open hold without a debit; False if it had already ended."""

    async def expire_holds(self, *, limit: int = 1000) -> int:
        """Housekeeping: mark open holds past their expiry as expired; returns how many."""

    async def forget_replies(self, *, limit: int = 1000) -> int:
        """Housekeeping: delete idempotency keys kept past their ``keep_s``; returns how many.

        A key past it is free whether or not this has run."""

    async def balance(self, org_id: str) -> Balance: ...

    async def credit_purchase(
        self, session_id: str, org_id: str, amount_units: int, reason: str = "purchase"
    ) -> CreditResult: ...

    async def grant(
        self, org_id: str, amount_units: int, reason: str, idempotency_key: str
    ) -> CreditResult: ...

    async def refund_purchase(
        self, refund_id: str, org_id: str, amount_units: int, reason: str
    ) -> CreditResult:
        """Take back unspent purchased credits; what was already spent becomes debt."""

    async def set_subscription(self, org_id: str, subscription: Subscription) -> Account:
        """Apply a plan unless a newer one (``as_of``) is already recorded.

        A new period start resets the used allowance exactly once.
        """

    async def clear_subscription(self, org_id: str, *, as_of: datetime) -> Account:
        """End the plan: the unused allowance lapses; purchased and granted stay."""


class AccessKeyStore(Protocol):
    """Organizations' access tokens, stored as hashes."""

    async def add_access_key(self, key: AccessKey) -> None: ...

    async def access_key_by_hash(self, token_sha256: str) -> AccessKey | None: ...

    async def list_access_keys(self, org_id: str) -> list[AccessKey]: ...

    async def revoke_access_key(self, org_id: str, key_id: str) -> AccessKey | None: ...

    async def set_key_limits(self, org_id: str, key_id: str, limits: KeyLimits) -> AccessKey | None:
        """Replace a key's limits (None if the org has no such key); they apply from the
        next hold, counting what the key's current budget window has already spent."""


class WebhookEventStore(Protocol):
    """Processed webhook events, so each is handled once however often it is delivered."""

    async def event_seen(self, event_id: str) -> bool: ...

    async def mark_event(self, event_id: str, kind: str) -> bool:
        """Record an event as processed; False if it already was."""


class ResponseOwners(Protocol):
    """Which org owns which stored response id, so that no other org can reach it.

    Not money: an owner record changes no balance, and a store that fails to
    write one fails closed (nobody can read that response through the gateway).
    """

    async def record_response(self, response_id: str, org_id: str, model: str) -> bool:
        """Record that ``org_id`` created ``response_id`` on ``model``'s upstream.

        Recording it again for the same org is a no-op (True); a response another org
        owns is never taken over (False, nothing changed). Raises ``AccountNotFound``
        for an unknown org.
        """

    async def response_owner(self, response_id: str) -> ResponseOwner | None: ...

    async def forget_response(self, response_id: str, org_id: str) -> bool:
        """Forget a response its owner deleted; False if ``org_id`` does not own it."""

    async def forget_responses_before(self, cutoff: datetime, *, limit: int = 1000) -> int:
        """Housekeeping: forget up to ``limit`` responses recorded before ``cutoff``."""


class SpendNotices(Protocol):
    """Alert and auto-recharge settings, the outbox their crossings fill, and recharges
    (``ledger.outbox``)."""

    async def set_alerts(
        self, org_id: str, url: str, thresholds_units: Sequence[int], new_secret: str
    ) -> tuple[AlertSettings, bool]:
        """Set the org's alert URL and thresholds; ``new_secret`` signs its deliveries unless
        it has a secret already. True when the secret is new (shown once)."""

    async def clear_alerts(self, org_id: str) -> bool: ...

    async def alert_settings(self, org_id: str) -> AlertSettings | None: ...

    async def set_auto_recharge(self, org_id: str, settings: AutoRecharge) -> AutoRecharge: ...

    async def clear_auto_recharge(self, org_id: str) -> bool: ...

    async def auto_recharge(self, org_id: str) -> AutoRecharge | None: ...

    async def claim_outbox(
        self, topic: OutboxTopic, *, limit: int, lease_s: float
    ) -> list[OutboxEvent]:
        """Due events no other worker holds, leased to the caller for ``lease_s``."""

    async def outbox_delivered(self, event_id: str) -> bool: ...

    async def outbox_failed(
        self, event_id: str, error: str, retry_at: datetime | None
    ) -> OutboxState | None:
        """One failed attempt: tried again at ``retry_at``, or a dead letter when None."""

    async def requeue_outbox(self, org_id: str, event_id: str) -> bool:
        """Send a dead letter again; False if it is not one."""

    async def alert_events(
        self, org_id: str, *, state: OutboxState | None = None, limit: int = 100
    ) -> list[OutboxEvent]:
        """The org's alerts, newest first."""

    async def recharges(self, org_id: str, *, limit: int = 20) -> list[Recharge]: ...

    async def recharge_started(self, recharge_id: str, payment_intent_id: str) -> bool: ...

    async def fail_recharge(
        self, recharge_id: str, reason: str, payment_intent_id: str | None = None
    ) -> bool:
        """A recharge that will not be paid; False if it had already ended."""

    async def complete_recharge(
        self, recharge_id: str, payment_intent_id: str
    ) -> CreditResult | None:
        """Credit a paid recharge exactly once; None for an unknown or failed recharge."""


class LedgerReports(Protocol):
    """Read-only views: usage, the credit audit trail, and the figures ``verify`` checks."""

    async def usage_records(
        self,
        org_id: str | None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        model: str | None = None,
    ) -> list[UsageRecord]:
        """Newest first; ``org_id`` None reads across orgs (operators only)."""

    async def usage_totals(
        self, org_id: str, group_by: UsageGroup, *, start: datetime, end: datetime
    ) -> list[UsageTotal]: ...

    async def credit_transactions(
        self, org_id: str, *, limit: int = 100
    ) -> list[CreditTransaction]: ...

    async def key_budget_use(self, org_id: str) -> list[KeyBudgetUse]:
        """Every key of the org that has a budget, in its current window."""

    async def ledger_figures(self) -> list[OrgLedgerFigures]:
        """Per-org figures for ``verify``, all read in one consistent snapshot."""


class LedgerStore(
    StoreLifecycle,
    MoneyLedger,
    AccessKeyStore,
    WebhookEventStore,
    ResponseOwners,
    SpendNotices,
    LedgerReports,
    Protocol,
):
    """Everything a backend offers: what the gateway holds."""
