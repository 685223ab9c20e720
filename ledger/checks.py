"""Input checks every backend applies before it touches its store, written once.

A caller's mistake (a negative amount, a zero time to live, an amount no
column can hold) is a ``ValueError`` raised before any read or write, the same
on every backend; what the store itself decides (not enough credit, an id
reused with other content) comes back from the operation.
"""

import math
from collections.abc import Sequence

from ledger.key_limits import KeyLimits
from ledger.models import ReplyKey, Subscription
from ledger.outbox import AutoRecharge

MAX_UNITS = 2**53
"""The largest amount one operation may carry (about 9 billion SPU): far below the
stores' signed 64-bit integers, so that sums of many such amounts still fit."""


def _within_range(amount_units: int, what: str) -> None:
    if amount_units > MAX_UNITS:
        raise ValueError(f"{what} of {amount_units} units is beyond the ledger's range")


def free_grant(amount_units: int) -> None:
    if amount_units < 0:
        raise ValueError("a free grant cannot be negative")
    _within_range(amount_units, "a free grant")


def hold(amount_units: int, ttl_s: float, tokens: int = 0) -> None:
    if amount_units < 0:
        raise ValueError("a hold cannot be negative")
    if not (ttl_s > 0 and math.isfinite(ttl_s)):
        raise ValueError("a hold needs a positive, finite time to live")
    if tokens < 0:
        raise ValueError("a hold's worst-case tokens cannot be negative")
    _within_range(amount_units, "a hold")
    _within_range(tokens, "a hold's worst-case token count")


def key_limits(limits: KeyLimits) -> None:
    if limits.budget_units is not None:
        if limits.budget_units < 0:
            raise ValueError("a key budget cannot be negative")
        _within_range(limits.budget_units, "a key budget")
    for name, rate in (("rpm", limits.rpm), ("tpm", limits.tpm)):
        if rate is not None and not 0 < rate <= MAX_UNITS:
            raise ValueError(f"a key's {name} must be a positive integer")


def renewal(ttl_s: float) -> None:
    if not (ttl_s > 0 and math.isfinite(ttl_s)):
        raise ValueError("a renewal needs a positive, finite time to live")


MAX_REPLY_KEY_CHARS = 255


def reply_key(key: ReplyKey) -> None:
    if not 0 < len(key.key) <= MAX_REPLY_KEY_CHARS:
        raise ValueError(f"an idempotency key has 1 to {MAX_REPLY_KEY_CHARS} characters")
    if not (key.keep_s > 0 and math.isfinite(key.keep_s)):
        raise ValueError("a reply needs a positive, finite time to be kept")


def settlement(actual_units: int) -> None:
    if actual_units < 0:
        raise ValueError("a settled amount cannot be negative")
    _within_range(actual_units, "a settled amount")


def credit(amount_units: int) -> None:
    if amount_units <= 0:
        raise ValueError("a credit must be positive")
    _within_range(amount_units, "a credit")


def refund(amount_units: int) -> None:
    if amount_units <= 0:
        raise ValueError("a refund must be positive")
    _within_range(amount_units, "a refund")


MAX_RESPONSE_ID_LENGTH = 256
"""Far above the ids OpenAI mints (``resp_`` and 48 hex digits); bounds what a caller can store."""


def response(response_id: str, model: str) -> None:
    if not 0 < len(response_id) <= MAX_RESPONSE_ID_LENGTH:
        raise ValueError(f"a response id must have 1 to {MAX_RESPONSE_ID_LENGTH} characters")
    if not model:
        raise ValueError("a response's model must be named")


def plan(subscription: Subscription) -> None:
    if subscription.allowance_units < 0:
        raise ValueError("an allowance cannot be negative")
    _within_range(subscription.allowance_units, "an allowance")


MAX_THRESHOLDS = 10
"""Alert thresholds per org: each is a watch every crossing settlement reads."""


def thresholds(thresholds_units: Sequence[int]) -> None:
    if len(thresholds_units) > MAX_THRESHOLDS:
        raise ValueError(f"at most {MAX_THRESHOLDS} alert thresholds")
    for units in thresholds_units:
        if units <= 0:
            raise ValueError("an alert threshold must be positive")
        _within_range(units, "an alert threshold")


def auto_recharge(settings: AutoRecharge) -> None:
    if settings.threshold_units <= 0 or settings.amount_units <= 0:
        raise ValueError("an auto-recharge needs a positive threshold and amount")
    if settings.monthly_cap_units < 0:
        raise ValueError("a monthly cap cannot be negative")
    for units in (settings.threshold_units, settings.amount_units, settings.monthly_cap_units):
        _within_range(units, "an auto-recharge amount")
