"""Every ledger read, once, as a routine both SQL backends run in one read snapshot."""

from collections.abc import Sequence
from datetime import datetime

from ledger.clock import to_ms
from ledger.errors import AccountNotFound
from ledger.key_limits import DAY_MS
from ledger.models import (
    AccessKey,
    Account,
    Balance,
    CreditTransaction,
    KeyBudgetFigures,
    OrgLedgerFigures,
    UsageGroup,
    UsageRecord,
    UsageTotal,
)
from ledger.sql.dialect import SQLITE_DAY, SQLITE_INSERTION_ORDER
from ledger.sql.funds import HELD_EXPRESSION
from ledger.sql.routine import Query, Routine, Row
from ledger.sql.rows import (
    ACCOUNT_COLUMNS,
    CREDIT_COLUMNS,
    KEY_COLUMNS,
    USAGE_COLUMNS,
    account_from_row,
    credit_from_row,
    key_from_row,
    limits_from_row,
    usage_from_row,
)
from ledger.waterfall import BucketSplit

FAR_FUTURE_MS = 2**62
"""The end of an open-ended time range."""

_GROUP_EXPRESSIONS: dict[str, str] = {
    "model": "model",
    "key": "COALESCE(key_id, '')",
    "day": SQLITE_DAY,
}
_ACCOUNT_SQL = Query(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE org_id = ?1")
_ACCOUNTS_AFTER_SQL = Query(
    f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE org_id > ?1 ORDER BY org_id LIMIT ?2"
)
_ORG_BY_CUSTOMER_SQL = Query("SELECT org_id FROM accounts WHERE stripe_customer_id = ?1")
_EVENT_SQL = Query("SELECT 1 FROM processed_events WHERE event_id = ?1")
_HELD_SQL = Query(f"SELECT {HELD_EXPRESSION} FROM accounts a WHERE a.org_id = ?1")
_DUE_ORGS_SQL = Query(
    "SELECT DISTINCT org_id FROM holds WHERE state = 'open' AND expires_at_ms <= ?1"
    " ORDER BY org_id LIMIT ?2"
)
_CREDITS_SQL = Query(
    f"SELECT {CREDIT_COLUMNS} FROM credit_transactions WHERE org_id = ?1"
    f" ORDER BY created_at_ms DESC, {SQLITE_INSERTION_ORDER} DESC LIMIT ?2"
)
_KEY_BY_HASH_SQL = Query(f"SELECT {KEY_COLUMNS} FROM access_keys WHERE token_sha256 = ?1")
_KEYS_SQL = Query(
    f"SELECT {KEY_COLUMNS} FROM access_keys WHERE org_id = ?1"
    f" ORDER BY created_at_ms, {SQLITE_INSERTION_ORDER}"
)
_CREDITED_SQL = Query("SELECT org_id, SUM(amount_units) FROM credit_transactions GROUP BY org_id")
_DEBITED_SQL = Query(
    "SELECT org_id, SUM(charged_units), COUNT(*), SUM(subscription_units),"
    " SUM(purchased_units), SUM(granted_units), SUM(debt_units)"
    " FROM usage_records GROUP BY org_id"
)
_SETTLED_SQL = Query(
    "SELECT org_id, COUNT(*), SUM(amount_units) FROM holds WHERE state = 'settled' GROUP BY org_id"
)
_OPEN_HOLDS_SQL = Query(
    "SELECT org_id, SUM(CASE WHEN expires_at_ms > ?1 THEN amount_units ELSE 0 END),"
    " SUM(CASE WHEN expires_at_ms <= ?1 THEN amount_units ELSE 0 END)"
    " FROM holds WHERE state = 'open' GROUP BY org_id"
)
_BUDGETED_KEYS_SQL = Query(
    "SELECT org_id, key_id, budget_units, budget_period, rpm, tpm, created_at_ms,"
    " limits_set_at_ms, limits_committed_units, window_start_ms, window_spent_units"
    " FROM access_keys WHERE budget_units IS NOT NULL"
)
_KEY_SPEND_BY_DAY_SQL = Query(
    f"SELECT u.key_id, (u.created_at_ms - k.created_at_ms) / {DAY_MS}, SUM(u.charged_units)"
    " FROM usage_records u JOIN access_keys k ON k.key_id = u.key_id"
    " WHERE k.budget_units IS NOT NULL AND u.created_at_ms >= k.created_at_ms"
    f" GROUP BY u.key_id, (u.created_at_ms - k.created_at_ms) / {DAY_MS}"
)
_ALL_ACCOUNTS_SQL = Query(
    f"SELECT {ACCOUNT_COLUMNS}, open_hold_units FROM accounts ORDER BY org_id"
)


def load_account(org_id: str) -> Routine[Account]:
    rows = yield _ACCOUNT_SQL, (org_id,)
    if not rows:
        raise AccountNotFound(org_id)
    return account_from_row(rows[0])


def list_accounts(limit: int, after_org_id: str) -> Routine[list[Account]]:
    rows = yield _ACCOUNTS_AFTER_SQL, (after_org_id, limit)
    return [account_from_row(row) for row in rows]


def org_by_stripe_customer(customer_id: str) -> Routine[str | None]:
    rows = yield _ORG_BY_CUSTOMER_SQL, (customer_id,)
    return str(rows[0][0]) if rows else None


def balance(org_id: str, now_ms: int) -> Routine[Balance]:
    account = yield from load_account(org_id)
    rows = yield _HELD_SQL, (org_id, now_ms)
    return Balance(account, int(rows[0][0]) if rows else 0)


def due_orgs(limit: int, now_ms: int) -> Routine[list[str]]:
    """Orgs with open holds past their expiry, for ``operations.expire_holds``."""
    rows = yield _DUE_ORGS_SQL, (now_ms, limit)
    return [str(row[0]) for row in rows]


def credit_transactions(org_id: str, limit: int) -> Routine[list[CreditTransaction]]:
    rows = yield _CREDITS_SQL, (org_id, limit)
    return [credit_from_row(row) for row in rows]


def usage_records(
    org_id: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    model: str | None,
) -> Routine[list[UsageRecord]]:
    conditions = ["created_at_ms >= ?1", "created_at_ms < ?2"]
    parameters: list[object] = [
        0 if start is None else to_ms(start),
        FAR_FUTURE_MS if end is None else to_ms(end),
    ]
    for column, value in (("org_id", org_id), ("model", model)):
        if value is not None:
            parameters.append(value)
            conditions.append(f"{column} = ?{len(parameters)}")
    parameters.append(limit)
    sql = (
        f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at_ms DESC, {SQLITE_INSERTION_ORDER} DESC LIMIT ?{len(parameters)}"
    )
    rows = yield Query(sql), tuple(parameters)
    return [usage_from_row(row) for row in rows]


def usage_totals(
    org_id: str, group_by: UsageGroup, start: datetime, end: datetime
) -> Routine[list[UsageTotal]]:
    sql = (
        f"SELECT {_GROUP_EXPRESSIONS[group_by]} AS grp, COUNT(*), SUM(prompt_tokens),"
        " SUM(completion_tokens), SUM(total_tokens), SUM(cost_pico_usd), SUM(charged_units)"
        " FROM usage_records WHERE org_id = ?1 AND created_at_ms >= ?2 AND created_at_ms < ?3"
        " GROUP BY grp ORDER BY grp"
    )
    rows = yield Query(sql), (org_id, to_ms(start), to_ms(end))
    return [UsageTotal(str(row[0]), *(int(value) for value in row[1:])) for row in rows]


def access_key_by_hash(token_sha256: str) -> Routine[AccessKey | None]:
    rows = yield _KEY_BY_HASH_SQL, (token_sha256,)
    return key_from_row(rows[0]) if rows else None


def list_access_keys(org_id: str) -> Routine[list[AccessKey]]:
    rows = yield _KEYS_SQL, (org_id,)
    return [key_from_row(row) for row in rows]


def event_seen(event_id: str) -> Routine[bool]:
    rows = yield _EVENT_SQL, (event_id,)
    return bool(rows)


def _by_org(rows: Sequence[Row]) -> dict[str, tuple[int, ...]]:
    """Sums by org as integers (PostgreSQL sums integers as numeric)."""
    return {str(row[0]): tuple(int(value or 0) for value in row[1:]) for row in rows}


def _key_budget_figures() -> Routine[dict[str, list[KeyBudgetFigures]]]:
    by_day: dict[str, list[tuple[int, int]]] = {}
    for key_id, day, units in (yield _KEY_SPEND_BY_DAY_SQL, ()):
        by_day.setdefault(str(key_id), []).append((int(day), int(units)))
    by_org: dict[str, list[KeyBudgetFigures]] = {}
    for row in (yield _BUDGETED_KEYS_SQL, ()):
        org_id, key_id = str(row[0]), str(row[1])
        created_ms, set_at_ms, committed, window_start, window_spent = row[6:]
        by_org.setdefault(org_id, []).append(
            KeyBudgetFigures(
                key_id,
                limits_from_row(row[2:6]),
                created_ms,
                set_at_ms,
                committed,
                window_start,
                window_spent,
                tuple(sorted(by_day.get(key_id, ()))),
            )
        )
    return by_org


def ledger_figures(now_ms: int) -> Routine[list[OrgLedgerFigures]]:
    """Per-org figures for ``verify``; the backend runs this in one read snapshot."""
    credited = _by_org((yield _CREDITED_SQL, ()))
    debited_by_org = _by_org((yield _DEBITED_SQL, ()))
    settled = _by_org((yield _SETTLED_SQL, ()))
    open_holds = _by_org((yield _OPEN_HOLDS_SQL, (now_ms,)))
    key_budgets = yield from _key_budget_figures()
    figures = []
    for row in (yield _ALL_ACCOUNTS_SQL, ()):
        account = account_from_row(row)
        org_id = account.org_id
        debited, count, sub, bought, granted, debt = debited_by_org.get(org_id, (0,) * 6)
        settled_count, settled_units = settled.get(org_id, (0, 0))
        held, expired_open = open_holds.get(org_id, (0, 0))
        figures.append(
            OrgLedgerFigures(
                account=account,
                credited_units=credited.get(org_id, (0,))[0],
                debited_units=debited,
                usage_record_count=count,
                settled_hold_count=settled_count,
                settled_hold_units=settled_units,
                held_units=held,
                split_sums=BucketSplit(sub, bought, granted, debt),
                counted_held_units=int(row[-1]) - expired_open,
                key_budgets=tuple(key_budgets.get(org_id, ())),
            )
        )
    return figures
