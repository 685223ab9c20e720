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
from ledger.models import (
    AccessKey,
    Account,
    Balance,
    CreditKind,
    CreditResult,
    CreditTransaction,
    HoldPlaced,
    HoldRefused,
    HoldState,
    KeyInUse,
    KeyUse,
    ReplyKey,
    ResponseOwner,
    SettleResult,
    StoredReply,
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
    "UNITS_PER_SPU",
    "AccessKey",
    "AccessKeyStore",
    "Account",
    "AccountNotFound",
    "Balance",
    "BucketSplit",
    "CreditKind",
    "CreditResult",
    "CreditTransaction",
    "HoldNotFound",
    "HoldNotOpen",
    "HoldPlaced",
    "HoldRefused",
    "HoldState",
    "IdempotencyConflict",
    "KeyInUse",
    "KeyUse",
    "LedgerError",
    "LedgerReports",
    "LedgerStore",
    "LedgerUnavailable",
    "MoneyLedger",
    "ReplyKey",
    "ResponseOwner",
    "ResponseOwners",
    "SettleResult",
    "StoreLifecycle",
    "StoredReply",
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
