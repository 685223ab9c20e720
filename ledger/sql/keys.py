"""A key's limits in the SQL routines: what ``hold`` and ``settle`` read and write of them,
and the routines that set and show them (the rules themselves are ``ledger.key_limits``).

``hold`` reads a key's limits, its budget window's running total, its open
holds and its last minute's admissions in the same statement as the org's
funds, so both are decided inside one write transaction; ``settle`` adds what
it charged to the window it settles in.
"""

from dataclasses import replace
from typing import NamedTuple

from ledger.clock import from_ms, optional_from_ms, to_ms
from ledger.key_limits import (
    RATE_WINDOW_MS,
    BudgetPeriod,
    KeyLimits,
    LimitSource,
    budget_left_units,
    rate_refusal,
    retry_after_ms,
    spent_in_window,
    window_end_ms,
    window_start_ms,
)
from ledger.models import AccessKey, HoldRefused, KeyBudgetUse, RateLimited
from ledger.sql.dialect import (
    SQLITE_INSERTION_ORDER,
    SQLITE_SUM_OF_AMOUNTS,
    SQLITE_SUM_OF_CHARGES,
    SQLITE_SUM_OF_TOKENS,
)
from ledger.sql.routine import Command, Params, Query, Routine
from ledger.sql.rows import KEY_COLUMNS, key_from_row

FAR_FUTURE_MS = 2**62

_KEY_HELD = (
    f"(SELECT {SQLITE_SUM_OF_AMOUNTS} FROM holds o WHERE o.key_id = k.key_id"
    " AND o.state = 'open' AND o.expires_at_ms > ?2)"
)
"""The key's open holds that have not expired at ``?2`` (a range of ``holds_open_by_key``)."""

KEY_STATE_COLUMNS = (
    "k.created_at_ms, k.budget_units, k.budget_period, k.rpm, k.tpm, k.window_start_ms,"
    f" k.window_spent_units, CASE WHEN k.budget_units IS NULL THEN 0 ELSE {_KEY_HELD} END,"
    " CASE WHEN k.rpm IS NULL AND k.tpm IS NULL THEN 0 ELSE (SELECT COUNT(*) FROM holds r"
    " WHERE r.key_id = k.key_id AND r.tokens IS NOT NULL AND r.created_at_ms > ?5) END,"
    f" CASE WHEN k.rpm IS NULL AND k.tpm IS NULL THEN 0 ELSE (SELECT {SQLITE_SUM_OF_TOKENS}"
    " FROM holds r WHERE r.key_id = k.key_id AND r.tokens IS NOT NULL"
    " AND r.created_at_ms > ?5) END"
)
"""The columns of ``KeyState`` for the key ``k`` at ``?2``, its rate window starting after
``?5``; all NULL when the call has no key (a LEFT JOIN that found none)."""

_ADMISSIONS_SQL = Query(
    "SELECT created_at_ms, tokens FROM holds WHERE key_id = ?1 AND tokens IS NOT NULL"
    " AND created_at_ms > ?2 ORDER BY created_at_ms"
)
_SETTLED_SPEND_SQL = Command(
    "UPDATE access_keys SET window_spent_units = CASE WHEN window_start_ms = ?1"
    " THEN window_spent_units + ?2 ELSE ?2 END, window_start_ms = ?1 WHERE key_id = ?3"
)
_KEY_SQL = Query(f"SELECT {KEY_COLUMNS} FROM access_keys WHERE org_id = ?1 AND key_id = ?2")
_SPENT_SQL = Query(
    f"SELECT {SQLITE_SUM_OF_CHARGES} FROM usage_records u WHERE u.org_id = ?1"
    " AND u.key_id = ?2 AND u.created_at_ms >= ?3 AND u.created_at_ms < ?4"
)
_HELD_SQL = Query(f"SELECT {_KEY_HELD} FROM access_keys k WHERE k.key_id = ?1")
_SET_LIMITS_SQL = Command(
    "UPDATE access_keys SET budget_units = ?1, budget_period = ?2, rpm = ?3, tpm = ?4,"
    " limits_set_at_ms = ?5, limits_committed_units = ?6, window_start_ms = ?7,"
    " window_spent_units = ?8 WHERE key_id = ?9"
)
_BUDGETS_SQL = Query(
    "SELECT k.key_id, k.created_at_ms, k.budget_units, k.budget_period, k.rpm, k.tpm,"
    f" k.window_start_ms, k.window_spent_units, {_KEY_HELD} FROM access_keys k"
    " WHERE k.org_id = ?1 AND k.budget_units IS NOT NULL"
    f" ORDER BY k.created_at_ms, k.{SQLITE_INSERTION_ORDER}"
)


class KeyState(NamedTuple):
    """A key as ``hold`` reads it; ``created_at_ms`` is None when the call has no key."""

    created_at_ms: int | None
    budget_units: int | None
    budget_period: str | None
    rpm: int | None
    tpm: int | None
    window_start_ms: int | None
    window_spent_units: int | None
    held_units: int | None
    requests_in_window: int | None
    tokens_in_window: int | None

    @property
    def limited(self) -> bool:
        return self.budget_units is not None or self.rpm is not None or self.tpm is not None

    @property
    def limits(self) -> KeyLimits:
        period = BudgetPeriod(self.budget_period or BudgetPeriod.TOTAL)
        return KeyLimits(self.budget_units, period, self.rpm, self.tpm)


def key_refusal(
    key: KeyState,
    key_id: str,
    request_id: str,
    org_id: str,
    amount_units: int,
    tokens: int,
    now_ms: int,
) -> Routine[HoldRefused | RateLimited | None]:
    """The key's own refusal of a hold the org's funds would cover, or None to admit it."""
    limits = key.limits
    assert key.created_at_ms is not None
    if limits.budget_units is not None:
        start_ms = window_start_ms(key.created_at_ms, limits.budget_period, now_ms)
        spent = spent_in_window(key.window_start_ms, key.window_spent_units or 0, start_ms)
        left = budget_left_units(limits, spent, int(key.held_units or 0))
        assert left is not None
        if amount_units > left:
            end_ms = window_end_ms(key.created_at_ms, limits.budget_period, start_ms)
            return HoldRefused(
                request_id,
                org_id,
                max(left, 0),
                amount_units,
                LimitSource.KEY_BUDGET,
                resets_at=optional_from_ms(end_ms),
            )
    requests, window_tokens = key.requests_in_window or 0, int(key.tokens_in_window or 0)
    source = rate_refusal(
        limits, requests_in_window=requests, tokens_in_window=window_tokens, tokens=tokens
    )
    if source is None:
        return None
    rows = yield _ADMISSIONS_SQL, (key_id, now_ms - RATE_WINDOW_MS)
    if source is LimitSource.KEY_RPM:
        assert limits.rpm is not None
        admissions = [(int(at_ms), 1) for at_ms, _ in rows]
        limit, used, needed = limits.rpm, requests, 1
    else:
        assert limits.tpm is not None
        admissions = [(int(at_ms), int(weight)) for at_ms, weight in rows]
        limit, used, needed = limits.tpm, window_tokens, tokens
    wait_ms = retry_after_ms(admissions, limit=limit, needed=needed, now_ms=now_ms)
    return RateLimited(request_id, org_id, source, limit, used, needed, wait_ms)


def settled_spend(
    key_id: str, created_at_ms: int, period: str, charged_units: int, now_ms: int
) -> tuple[Command, Params]:
    """Add a settlement to the running total of the key's window, starting a new one if the
    window it holds has ended."""
    start_ms = window_start_ms(created_at_ms, BudgetPeriod(period), now_ms)
    return _SETTLED_SPEND_SQL, (start_ms, charged_units, key_id)


def _window_figures(
    org_id: str, key: AccessKey, limits: KeyLimits, now_ms: int
) -> Routine[tuple[int, int, int]]:
    """The window a budget applies to now, what it settled and what the key holds open."""
    created_ms = to_ms(key.created_at)
    start_ms = window_start_ms(created_ms, limits.budget_period, now_ms)
    end_ms = window_end_ms(created_ms, limits.budget_period, start_ms) or FAR_FUTURE_MS
    spent = (yield _SPENT_SQL, (org_id, key.key_id, start_ms, end_ms))[0][0]
    held = (yield _HELD_SQL, (key.key_id, now_ms))[0][0]
    return start_ms, int(spent), int(held)


def set_key_limits(
    org_id: str, key_id: str, limits: KeyLimits, now_ms: int
) -> Routine[AccessKey | None]:
    """Replace the limits; the running total restarts from the usage records of the window
    they apply to now, and what is already committed (settled and held) is kept for
    ``verify``, which allows a window the new budget is lowered in to end above it."""
    rows = yield _KEY_SQL, (org_id, key_id)
    if not rows:
        return None
    key = key_from_row(rows[0])
    start_ms: int | None = None
    spent = committed = 0
    if limits.budget_units is not None:
        start_ms, spent, held = yield from _window_figures(org_id, key, limits, now_ms)
        committed = spent + held
    yield (
        _SET_LIMITS_SQL,
        (
            limits.budget_units,
            limits.budget_period.value,
            limits.rpm,
            limits.tpm,
            now_ms,
            committed,
            start_ms,
            spent,
            key_id,
        ),
    )
    return replace(key, limits=limits)


def key_budget_use(org_id: str, now_ms: int) -> Routine[list[KeyBudgetUse]]:
    rows = yield _BUDGETS_SQL, (org_id, now_ms)
    used = []
    for key_id, created_ms, budget, period, rpm, tpm, stored_start, stored_spent, held in rows:
        limits = KeyLimits(budget, BudgetPeriod(period), rpm, tpm)
        start_ms = window_start_ms(created_ms, limits.budget_period, now_ms)
        end_ms = window_end_ms(created_ms, limits.budget_period, start_ms)
        used.append(
            KeyBudgetUse(
                key_id,
                limits,
                from_ms(start_ms),
                optional_from_ms(end_ms),
                spent_in_window(stored_start, stored_spent, start_ms),
                int(held),
            )
        )
    return used
