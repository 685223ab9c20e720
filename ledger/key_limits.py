"""Per-key limits as pure rules every backend shares: budget windows, and rate windows.

A key's budget is spent in windows that follow one another from the key's
creation, in UTC: a day, a week or a calendar month long (a month window
starts on the creation's day of the month, at its time of day, clamped to the
month's last day), or one window for the key's whole life (``total``). What a
window has spent is what was settled in it, by settlement time; a hold is
admitted only if that, plus every open hold of the key, plus the hold itself,
fits the budget.

Rate limits count the calls admitted (holds placed) in the last minute, an
exact sliding window: a hold at ``now`` counts the holds placed after
``now - RATE_WINDOW_MS``, so no 60-second span ever admits more than ``rpm``
calls, or more than ``tpm`` tokens (each call counted at its worst case until
its settlement trues it up).
"""

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
RATE_WINDOW_MS = 60_000
"""The span rpm and tpm count over."""


class BudgetPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"


_FIXED_LENGTH_MS = {BudgetPeriod.DAY: DAY_MS, BudgetPeriod.WEEK: 7 * DAY_MS}


class LimitSource(StrEnum):
    """Which limit refused a hold: the org's credits, or one of the key's own limits."""

    ORG = "org"
    KEY_BUDGET = "key_budget"
    KEY_RPM = "key_rpm"
    KEY_TPM = "key_tpm"


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """What one key may spend and how fast; None is no limit."""

    budget_units: int | None = None
    budget_period: BudgetPeriod = BudgetPeriod.TOTAL
    rpm: int | None = None
    tpm: int | None = None

    @property
    def rate_limited(self) -> bool:
        return self.rpm is not None or self.tpm is not None


NO_LIMITS = KeyLimits()


def _moment(epoch_ms: int) -> datetime:
    """Exact to the millisecond (``ledger.clock`` goes through a float)."""
    return _EPOCH + epoch_ms * _MS


def _epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def _add_months(moment: datetime, months: int) -> datetime:
    """The same day of the month and time of day ``months`` later, clamped to the month's end."""
    year, month_index = divmod(moment.year * 12 + moment.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return moment.replace(year=year, month=month_index + 1, day=min(moment.day, last_day))


def window_start_ms(created_ms: int, period: BudgetPeriod, now_ms: int) -> int:
    """The start of the window of a key created at ``created_ms`` that holds ``now_ms``
    (the first window for a moment before the creation)."""
    if period is BudgetPeriod.TOTAL or now_ms <= created_ms:
        return created_ms
    if period in _FIXED_LENGTH_MS:
        length_ms = _FIXED_LENGTH_MS[period]
        return created_ms + (now_ms - created_ms) // length_ms * length_ms
    created, now = _moment(created_ms), _moment(now_ms)
    months = (now.year - created.year) * 12 + now.month - created.month
    if _epoch_ms(_add_months(created, months)) > now_ms:
        months -= 1
    return _epoch_ms(_add_months(created, months))


def window_end_ms(created_ms: int, period: BudgetPeriod, start_ms: int) -> int | None:
    """The end of the window starting at ``start_ms`` (exclusive); None for ``total``."""
    if period is BudgetPeriod.TOTAL:
        return None
    if period in _FIXED_LENGTH_MS:
        return start_ms + _FIXED_LENGTH_MS[period]
    created, start = _moment(created_ms), _moment(start_ms)
    months = (start.year - created.year) * 12 + start.month - created.month
    return _epoch_ms(_add_months(created, months + 1))


def spent_in_window(stored_start_ms: int | None, stored_spent_units: int, start_ms: int) -> int:
    """A key's settled spend in the window starting at ``start_ms``, from the one window it
    keeps a running total for (any other window has seen no settlement yet)."""
    return stored_spent_units if stored_start_ms == start_ms else 0


def budget_left_units(limits: KeyLimits, spent_units: int, held_units: int) -> int | None:
    """What a new hold of the key may still reserve in its window; None without a budget."""
    if limits.budget_units is None:
        return None
    return limits.budget_units - spent_units - held_units


def rate_refusal(
    limits: KeyLimits, *, requests_in_window: int, tokens_in_window: int, tokens: int
) -> LimitSource | None:
    """The rate limit a new call of ``tokens`` worst-case tokens would break, if any."""
    if limits.rpm is not None and requests_in_window + 1 > limits.rpm:
        return LimitSource.KEY_RPM
    if limits.tpm is not None and tokens_in_window + tokens > limits.tpm:
        return LimitSource.KEY_TPM
    return None


def retry_after_ms(
    admissions: Sequence[tuple[int, int]], *, limit: int, needed: int, now_ms: int
) -> int | None:
    """How long until enough of the window's admissions have left it for ``needed`` more.

    ``admissions`` are (placed at, weight) in the window, oldest first: a weight
    of 1 each for rpm, tokens for tpm. None when waiting cannot help (``needed``
    alone is over the limit).
    """
    if needed > limit:
        return None
    excess = sum(weight for _, weight in admissions) + needed - limit
    if excess <= 0:
        return 0
    for placed_at_ms, weight in admissions:
        excess -= weight
        if excess <= 0:
            return max(placed_at_ms + RATE_WINDOW_MS - now_ms, 1)
    raise AssertionError("with every admission gone, needed fits the limit")
