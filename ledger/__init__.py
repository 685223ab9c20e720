"""The credit ledger: accounts, buckets, holds, the waterfall, usage and credits.

It knows nothing of HTTP, Stripe or LLMs; ``open_store`` picks a backend from a URL.
"""

from ledger.errors import (
    AccountNotFound,
    HoldNotFound,
    HoldNotOpen,
    IdempotencyConflict,
    LedgerError,
    LedgerUnavailable,
)
from ledger.factory import open_store
from ledger.key_limits import NO_LIMITS, BudgetPeriod, KeyLimits, LimitSource
from ledger.models import (
    AccessKey,
    Account,
    Balance,
    CreditKind,
    CreditResult,
    CreditTransaction,
    HoldOutcome,
    HoldPlaced,
    HoldRefused,
    HoldState,
    KeyBudgetUse,
    RateLimited,
    ResponseOwner,
    SettleResult,
    Subscription,
    UsageDetails,
    UsageRecord,
    UsageTotal,
)
from ledger.store import (
    AccessKeyStore,
    LedgerReports,
    LedgerStore,
    MoneyLedger,
    ResponseOwners,
    StoreLifecycle,
    WebhookEventStore,
)
from ledger.units import UNITS_PER_SPU, format_spus, spus_to_units, units_to_spus
from ledger.waterfall import BucketSplit, split_debit

__all__ = [
    "NO_LIMITS",
    "UNITS_PER_SPU",
    "AccessKey",
    "AccessKeyStore",
    "Account",
    "AccountNotFound",
    "Balance",
    "BucketSplit",
    "BudgetPeriod",
    "CreditKind",
    "CreditResult",
    "CreditTransaction",
    "HoldNotFound",
    "HoldNotOpen",
    "HoldOutcome",
    "HoldPlaced",
    "HoldRefused",
    "HoldState",
    "IdempotencyConflict",
    "KeyBudgetUse",
    "KeyLimits",
    "LedgerError",
    "LedgerReports",
    "LedgerStore",
    "LedgerUnavailable",
    "LimitSource",
    "MoneyLedger",
    "RateLimited",
    "ResponseOwner",
    "ResponseOwners",
    "SettleResult",
    "StoreLifecycle",
    "Subscription",
    "UsageDetails",
    "UsageRecord",
    "UsageTotal",
    "WebhookEventStore",
    "format_spus",
    "open_store",
    "split_debit",
    "spus_to_units",
    "units_to_spus",
]
