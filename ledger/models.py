"""The ledger's records, as immutable values both backends return.

Amounts are integer units (see ``ledger.units``); provider cost is integer
pico-USD (1e-12 USD) so that per-token prices from the cost map, which have
up to twelve decimal places, multiply out exactly.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from ledger.key_limits import NO_LIMITS, KeyLimits, LimitSource
from ledger.waterfall import BucketSplit

PICO_USD_PER_USD = 10**12

UsageGroup = Literal["model", "key", "day"]


class HoldState(StrEnum):
    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"


class CreditKind(StrEnum):
    """Every way a balance changes other than a metered debit."""

    FREE_TIER = "free_tier"
    GRANT = "grant"
    PURCHASE = "purchase"
    REFUND = "refund"
    ALLOWANCE = "allowance"
    ALLOWANCE_EXPIRED = "allowance_expired"


@dataclass(frozen=True, slots=True)
class Account:
    """One organization's credit state; the fields of the original ``payments_customers``."""

    org_id: str
    user_id: str | None
    user_name: str | None
    user_email: str | None
    stripe_customer_id: str | None
    subscription_type: str
    subscription_status: str | None
    subscription_price_id: str | None
    subscription_item_id: str | None
    subscription_allowance_units: int
    subscription_used_units: int
    period_start: datetime | None
    period_end: datetime | None
    purchased_credits_units: int
    purchased_used_units: int
    granted_credits_units: int
    granted_used_units: int
    debt_units: int
    subscription_as_of: datetime | None
    renews_locally: bool
    created_at: datetime
    updated_at: datetime

    @property
    def subscription_left_units(self) -> int:
        return self.subscription_allowance_units - self.subscription_used_units

    @property
    def purchased_left_units(self) -> int:
        return self.purchased_credits_units - self.purchased_used_units

    @property
    def granted_left_units(self) -> int:
        return self.granted_credits_units - self.granted_used_units

    @property
    def net_balance_units(self) -> int:
        """What the buckets hold minus recorded debt; negative while in debt."""
        return (
            self.subscription_left_units
            + self.purchased_left_units
            + self.granted_left_units
            - self.debt_units
        )


@dataclass(frozen=True, slots=True)
class Balance:
    """Spendable credit right now: buckets minus debt minus unexpired open holds."""

    account: Account
    held_units: int

    @property
    def available_units(self) -> int:
        return max(0, self.account.net_balance_units - self.held_units)


@dataclass(frozen=True, slots=True)
class HoldPlaced:
    request_id: str
    org_id: str
    amount_units: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class HoldRefused:
    """Not enough credit: what the org (or the key's budget) could spend and what the request
    needed."""

    request_id: str
    org_id: str
    available_units: int
    needed_units: int
    limit_source: LimitSource = LimitSource.ORG
    """``ORG`` (the org's available credits) or ``KEY_BUDGET`` (the key's window budget)."""
    resets_at: datetime | None = None
    """When the key's budget window ends (a key budget of a day, week or month)."""


@dataclass(frozen=True, slots=True)
class RateLimited:
    """A key's rpm or tpm refused the hold: the limit, what the last minute used, and what
    this call needed (1 request, or its worst-case tokens)."""

    request_id: str
    org_id: str
    limit_source: LimitSource
    limit: int
    used: int
    needed: int
    retry_after_ms: int | None
    """When the window admits it again; None when waiting cannot help (needed > limit)."""


@dataclass(frozen=True, slots=True)
class ReplyKey:
    """A client's idempotency key on a metered call: one org's key, one request.

    A hold placed with it claims the key for its call; the call's settlement
    keeps the reply under it for ``keep_s``, so that the same request sent again
    with the same key is answered with that reply instead of a second call.
    """

    key: str
    fingerprint: str
    """What identifies the request (a digest of its body): the same key with another
    request is refused, never replayed."""
    keep_s: float


@dataclass(frozen=True, slots=True)
class StoredReply:
    """A settled call's reply as its client was sent it, kept under its idempotency key."""

    content_type: str
    body: bytes | None
    """The bytes sent (a stream's events as they went out); None when the reply was larger
    than the gateway keeps."""


class KeyUse(StrEnum):
    """Why a hold with an idempotency key was not placed: the key is taken."""

    COMPLETED = "completed"
    """Its call settled: its reply (if kept) answers the request again, at no charge."""
    IN_FLIGHT = "in_flight"
    """Its call is still running on some worker."""
    OTHER_REQUEST = "other_request"
    """It was used for a different request."""


@dataclass(frozen=True, slots=True)
class KeyInUse:
    key: str
    use: KeyUse
    request_id: str
    """The call that holds the key."""
    reply: StoredReply | None = None


HoldOutcome = HoldPlaced | HoldRefused | RateLimited | KeyInUse
"""What placing a hold answers: placed, or not placed because credit, a key's rate or an
idempotency key's earlier use stands in the way."""


@dataclass(frozen=True, slots=True)
class UsageDetails:
    """What the caller knows about a finished call, recorded with its debit."""

    model: str
    provider: str
    key_id: str | None = None
    operation: str = "chat.completions"
    source: str = "openai"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_pico_usd: int = 0
    latency_ms: int = 0
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One settled call: the original ``payments_usage_records`` plus split and ids."""

    request_id: str
    org_id: str
    charged_units: int
    split: BucketSplit
    details: UsageDetails
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SettleResult:
    record: UsageRecord
    available_units: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CreditTransaction:
    """One line of the audit trail (the original ``payments_credit_transactions``)."""

    transaction_id: str
    org_id: str
    kind: CreditKind
    amount_units: int
    debt_paid_units: int
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CreditResult:
    """``applied`` is False when the id had already been credited (nothing changed)."""

    transaction: CreditTransaction
    applied: bool


@dataclass(frozen=True, slots=True)
class Subscription:
    """A plan as the billing side sees it; ``as_of`` orders out-of-order updates."""

    tier: str
    allowance_units: int
    status: str
    period_start: datetime
    period_end: datetime
    as_of: datetime
    price_id: str | None = None
    item_id: str | None = None
    renews_locally: bool = False
    """Plans set by hand (Enterprise) roll over on the ledger's clock; Stripe plans on invoices."""


@dataclass(frozen=True, slots=True)
class UsageTotal:
    group: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_pico_usd: int
    charged_units: int


@dataclass(frozen=True, slots=True)
class ResponseOwner:
    """Which org created a response an upstream stores (OpenAI's Responses API), and where.

    The upstream knows only the gateway's own key, so this record is what keeps
    one org from reading, continuing or deleting another's response.
    """

    response_id: str
    org_id: str
    model: str
    """The gateway's public name of the model whose upstream holds the response."""
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccessKey:
    """An org's access token as stored: only its SHA-256 hash, never the token."""

    key_id: str
    org_id: str
    prefix: str
    token_sha256: str
    name: str | None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    limits: KeyLimits = NO_LIMITS


@dataclass(frozen=True, slots=True)
class KeyBudgetUse:
    """Where a key with a budget stands in its current window."""

    key_id: str
    limits: KeyLimits
    window_start: datetime
    window_end: datetime | None
    """None for a ``total`` budget, which never resets."""
    spent_units: int
    held_units: int

    @property
    def left_units(self) -> int:
        assert self.limits.budget_units is not None
        return max(self.limits.budget_units - self.spent_units - self.held_units, 0)


@dataclass(frozen=True, slots=True)
class KeyBudgetFigures:
    """What ``verify`` needs about one key with a budget, read with its org's figures."""

    key_id: str
    limits: KeyLimits
    created_at_ms: int
    limits_set_at_ms: int
    committed_units: int
    """Settled and held in the current window when the limits were set."""
    window_start_ms: int | None
    window_spent_units: int
    """The running total of the window starting at ``window_start_ms``."""
    spend_by_day: tuple[tuple[int, int], ...]
    """Settled charges of the key by whole days since its creation: (day, units)."""


@dataclass(frozen=True, slots=True)
class OrgLedgerFigures:
    """Everything ``verify`` needs about one org, read in one consistent snapshot."""

    account: Account
    credited_units: int
    debited_units: int
    usage_record_count: int
    settled_hold_count: int
    settled_hold_units: int
    held_units: int
    split_sums: BucketSplit = field(default_factory=BucketSplit)
    counted_held_units: int | None = None
    """A backend's running total of unexpired open holds, where it keeps one (SQLite does,
    so a hold costs the same however many are open); it must equal ``held_units``."""
    key_budgets: tuple[KeyBudgetFigures, ...] = ()
