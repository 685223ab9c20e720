"""Ledger writes as plain functions of a connection, run by the group-commit writer.

Each function is one atomic operation: the writer wraps it in a SAVEPOINT
inside a ``BEGIN IMMEDIATE`` transaction, so reads and the conditional writes
that follow them cannot interleave with another writer, in this process or
another one on the same file. Nothing is cached between operations: another
process may have written since.

``hold`` and ``settle`` are the hot path and are kept to one read and two or
three writes each; everything else favours plain code over statement counts.
"""

import sqlite3
from collections import defaultdict
from typing import NamedTuple

from ledger.clock import from_ms, optional_to_ms, to_ms
from ledger.errors import AccountNotFound, HoldNotFound, HoldNotOpen, IdempotencyConflict
from ledger.models import (
    AccessKey,
    Account,
    CreditKind,
    CreditResult,
    HoldPlaced,
    HoldRefused,
    HoldState,
    SettleResult,
    Subscription,
    UsageDetails,
    UsageRecord,
)
from ledger.periods import (
    AllowanceChange,
    audit_lines,
    is_stale,
    lapse_allowance,
    plan_period,
    renewed_period,
)
from ledger.replays import check_key_replay, check_settlement_replay, credit_replay, hold_replay
from ledger.sqlite.rows import (
    ACCOUNT_COLUMNS,
    CREDIT_COLUMNS,
    KEY_COLUMNS,
    USAGE_COLUMNS,
    account_from_row,
    credit_from_row,
    key_from_row,
    usage_from_row,
)
from ledger.waterfall import debt_payoff, settlement_split

_HELD = (
    "a.open_hold_units - (SELECT COALESCE(SUM(o.amount_units), 0) FROM holds o"
    " WHERE o.org_id = a.org_id AND o.state = 'open' AND o.expires_at_ms <= ?2)"
)
"""Open holds of account ``a`` that have not expired at ``?2``: the running total minus
the expired ones no sweep has ended yet (a short range of a partial index)."""

_FUNDS = (
    "a.subscription_allowance_units - a.subscription_used_units,"
    " a.purchased_credits_units - a.purchased_used_units,"
    f" a.granted_credits_units - a.granted_used_units, a.debt_units, {_HELD},"
    " a.renews_locally, a.period_end_ms"
)
"""The columns of ``Funds``, for account ``a`` at ``?2``."""

_FUNDS_SQL = f"SELECT {_FUNDS} FROM accounts a WHERE a.org_id = ?1"
_HELD_SQL = f"SELECT {_HELD} FROM accounts a WHERE a.org_id = ?1"
_FUNDS_AND_HOLD_SQL = (
    f"SELECT {_FUNDS}, h.org_id, h.amount_units, h.expires_at_ms"
    " FROM accounts a LEFT JOIN holds h ON h.request_id = ?3 WHERE a.org_id = ?1"
)
"""An account's funds and any hold already placed under the request id: hold's one read."""
_HOLD_AND_FUNDS_SQL = (
    f"SELECT h.org_id, h.amount_units, h.state, h.expires_at_ms, {_FUNDS}"
    " FROM holds h JOIN accounts a ON a.org_id = h.org_id WHERE h.request_id = ?1"
)
"""A hold and its account's funds in one read: settle's only SELECT on its common path."""
_HOLD_SQL = "SELECT org_id, amount_units, state, expires_at_ms FROM holds WHERE request_id = ?"
_INSERT_HOLD_SQL = (
    "INSERT INTO holds (request_id, org_id, key_id, amount_units, state, created_at_ms,"
    " expires_at_ms) VALUES (?, ?, ?, ?, 'open', ?, ?)"
)
_ADD_HELD_SQL = "UPDATE accounts SET open_hold_units = open_hold_units + ? WHERE org_id = ?"
_DEBIT_SQL = (
    "UPDATE accounts SET subscription_used_units = subscription_used_units + ?,"
    " purchased_used_units = purchased_used_units + ?,"
    " granted_used_units = granted_used_units + ?, debt_units = debt_units + ?,"
    " open_hold_units = open_hold_units - ?, updated_at_ms = ? WHERE org_id = ?"
)
_SETTLE_HOLD_SQL = "UPDATE holds SET state = 'settled', ended_at_ms = ? WHERE request_id = ?"
_INSERT_USAGE_SQL = (
    f"INSERT INTO usage_records ({USAGE_COLUMNS}) VALUES"
    " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class Funds(NamedTuple):
    """An account's spendable figures, read inside the operation's write transaction."""

    subscription_left_units: int
    purchased_left_units: int
    granted_left_units: int
    debt_units: int
    held_units: int
    """Open holds whose expiry has not passed: an expired hold stops counting at once."""
    renews_locally: int
    period_end_ms: int | None

    @property
    def bucket_left_units(self) -> int:
        return self.subscription_left_units + self.purchased_left_units + self.granted_left_units

    def renewal_due(self, now_ms: int) -> bool:
        """A locally renewed plan whose period has ended, waiting for a hold or settle."""
        return (
            bool(self.renews_locally)
            and self.period_end_ms is not None
            and now_ms >= self.period_end_ms
        )

    @property
    def available_units(self) -> int:
        """What a new hold may reserve; negative while debt exceeds the buckets."""
        return self.bucket_left_units - self.debt_units - self.held_units


def load_account(connection: sqlite3.Connection, org_id: str) -> Account:
    row = connection.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE org_id = ?", (org_id,)
    ).fetchone()
    if row is None:
        raise AccountNotFound(org_id)
    return account_from_row(row)


def held_units(connection: sqlite3.Connection, org_id: str, now_ms: int) -> int:
    """Open holds that have not expired, from the running total; 0 for an unknown org."""
    row = connection.execute(_HELD_SQL, (org_id, now_ms)).fetchone()
    return 0 if row is None else int(row[0])


def _read_funds(connection: sqlite3.Connection, org_id: str, now_ms: int) -> Funds:
    row = connection.execute(_FUNDS_SQL, (org_id, now_ms)).fetchone()
    if row is None:
        raise AccountNotFound(org_id)
    return Funds(*row)


def current_funds(connection: sqlite3.Connection, org_id: str, now_ms: int) -> Funds:
    """The account's funds, after renewing a locally renewed plan whose period has ended."""
    funds = _read_funds(connection, org_id, now_ms)
    if funds.renewal_due(now_ms):
        _renew_period(connection, load_account(connection, org_id), now_ms)
        funds = _read_funds(connection, org_id, now_ms)
    return funds


def _insert_credit(
    connection: sqlite3.Connection,
    transaction_id: str,
    org_id: str,
    kind: CreditKind,
    amount_units: int,
    debt_paid_units: int,
    reason: str,
    now_ms: int,
) -> None:
    connection.execute(
        f"INSERT INTO credit_transactions ({CREDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (transaction_id, org_id, kind.value, amount_units, debt_paid_units, reason, now_ms),
    )


def _record_allowance_change(
    connection: sqlite3.Connection, org_id: str, change: AllowanceChange, reason: str, now_ms: int
) -> None:
    for line in audit_lines(org_id, change):
        _insert_credit(
            connection,
            line.transaction_id,
            org_id,
            line.kind,
            line.amount_units,
            line.debt_paid_units,
            reason,
            now_ms,
        )


def _write_allowance(
    connection: sqlite3.Connection, org_id: str, change: AllowanceChange, now_ms: int
) -> None:
    connection.execute(
        "UPDATE accounts SET subscription_allowance_units = ?, subscription_used_units = ?,"
        " debt_units = ?, updated_at_ms = ? WHERE org_id = ?",
        (change.allowance_units, change.used_units, change.debt_units, now_ms, org_id),
    )


def _renew_period(connection: sqlite3.Connection, account: Account, now_ms: int) -> None:
    """Renew a locally renewed plan whose period has ended; once, however many notice,
    because the period end moves forward in the same transaction."""
    assert account.period_start is not None and account.period_end is not None
    period = renewed_period(
        to_ms(account.period_start),
        to_ms(account.period_end),
        now_ms,
        allowance_units=account.subscription_allowance_units,
        used_units=account.subscription_used_units,
        debt_units=account.debt_units,
    )
    _write_allowance(connection, account.org_id, period.change, now_ms)
    connection.execute(
        "UPDATE accounts SET period_start_ms = ?, period_end_ms = ? WHERE org_id = ?",
        (period.start_ms, period.end_ms, account.org_id),
    )
    _record_allowance_change(connection, account.org_id, period.change, "period renewed", now_ms)


def create_account(
    connection: sqlite3.Connection,
    org_id: str,
    free_grant_units: int,
    user_id: str | None,
    user_name: str | None,
    user_email: str | None,
    now_ms: int,
) -> Account:
    if free_grant_units < 0:
        raise ValueError("a free grant cannot be negative")
    inserted = connection.execute(
        "INSERT OR IGNORE INTO accounts (org_id, user_id, user_name, user_email,"
        " granted_credits_units, created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (org_id, user_id, user_name, user_email, free_grant_units, now_ms, now_ms),
    ).rowcount
    if inserted and free_grant_units:
        _insert_credit(
            connection,
            f"free_tier:{org_id}",
            org_id,
            CreditKind.FREE_TIER,
            free_grant_units,
            0,
            "free tier",
            now_ms,
        )
    return load_account(connection, org_id)


def set_stripe_customer(
    connection: sqlite3.Connection, org_id: str, customer_id: str, now_ms: int
) -> str:
    account = load_account(connection, org_id)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    try:
        connection.execute(
            "UPDATE accounts SET stripe_customer_id = ?, updated_at_ms = ? WHERE org_id = ?",
            (customer_id, now_ms, org_id),
        )
    except sqlite3.IntegrityError as error:
        raise IdempotencyConflict(
            "stripe customer", customer_id, "it belongs to another org"
        ) from error
    return customer_id


def hold(
    connection: sqlite3.Connection,
    org_id: str,
    amount_units: int,
    request_id: str,
    ttl_s: float,
    key_id: str | None,
    now_ms: int,
) -> HoldPlaced | HoldRefused:
    if amount_units < 0:
        raise ValueError("a hold cannot be negative")
    if ttl_s <= 0:
        raise ValueError("a hold needs a positive time to live")
    row = connection.execute(_FUNDS_AND_HOLD_SQL, (org_id, now_ms, request_id)).fetchone()
    if row is None:
        raise AccountNotFound(org_id)
    held_org_id, held_amount, held_expires_ms = row[7:]
    if held_org_id is not None:
        return hold_replay(
            request_id,
            org_id,
            amount_units,
            held_org_id=held_org_id,
            held_amount_units=held_amount,
            expires_at_ms=held_expires_ms,
        )
    funds = Funds(*row[:7])
    if funds.renewal_due(now_ms):
        funds = current_funds(connection, org_id, now_ms)
    available = funds.available_units
    if amount_units > available:
        return HoldRefused(request_id, org_id, max(available, 0), amount_units)
    expires_ms = now_ms + int(ttl_s * 1000)
    connection.execute(
        _INSERT_HOLD_SQL, (request_id, org_id, key_id, amount_units, now_ms, expires_ms)
    )
    connection.execute(_ADD_HELD_SQL, (amount_units, org_id))
    return HoldPlaced(request_id, org_id, amount_units, from_ms(expires_ms))


def settle(
    connection: sqlite3.Connection,
    request_id: str,
    actual_units: int,
    details: UsageDetails,
    now_ms: int,
) -> SettleResult:
    if actual_units < 0:
        raise ValueError("a settled amount cannot be negative")
    row = connection.execute(_HOLD_AND_FUNDS_SQL, (request_id, now_ms)).fetchone()
    if row is None:
        raise HoldNotFound(request_id)
    org_id, hold_units, state, expires_ms = row[:4]
    if state == HoldState.SETTLED:
        return _replay_settlement(connection, request_id, org_id, actual_units, now_ms)
    if state != HoldState.OPEN:
        raise HoldNotOpen(request_id, state)
    funds = Funds(*row[4:])
    if funds.renewal_due(now_ms):
        funds = current_funds(connection, org_id, now_ms)
    # A hold whose expiry has passed (but that no sweep has ended) no longer
    # counts in ``funds.held_units``, and reserves nothing for this settlement.
    reserved_units = hold_units if expires_ms > now_ms else 0
    split = settlement_split(actual_units, reserved_units, funds.held_units, funds)
    connection.execute(
        _DEBIT_SQL,
        (
            split.subscription_units,
            split.purchased_units,
            split.granted_units,
            split.debt_units,
            hold_units,
            now_ms,
            org_id,
        ),
    )
    connection.execute(_SETTLE_HOLD_SQL, (now_ms, request_id))
    connection.execute(
        _INSERT_USAGE_SQL,
        (
            request_id,
            org_id,
            details.key_id,
            details.model,
            details.provider,
            details.operation,
            details.source,
            details.prompt_tokens,
            details.completion_tokens,
            details.total_tokens,
            details.cost_pico_usd,
            actual_units,
            split.subscription_units,
            split.purchased_units,
            split.granted_units,
            split.debt_units,
            details.latency_ms,
            details.status,
            now_ms,
        ),
    )
    # Every charged unit left the buckets or became debt; the hold no longer counts.
    available = funds.available_units - actual_units + reserved_units
    record = UsageRecord(request_id, org_id, actual_units, split, details, from_ms(now_ms))
    return SettleResult(record, max(available, 0))


def _replay_settlement(
    connection: sqlite3.Connection, request_id: str, org_id: str, actual_units: int, now_ms: int
) -> SettleResult:
    row = connection.execute(
        f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE request_id = ?", (request_id,)
    ).fetchone()
    record = usage_from_row(row)
    check_settlement_replay(request_id, record.charged_units, actual_units)
    available = _read_funds(connection, org_id, now_ms).available_units
    return SettleResult(record, max(available, 0), replayed=True)


def release(connection: sqlite3.Connection, request_id: str, now_ms: int) -> bool:
    ended = connection.execute(
        "UPDATE holds SET state = 'released', ended_at_ms = ? WHERE request_id = ?"
        " AND state = 'open' RETURNING org_id, amount_units",
        (now_ms, request_id),
    ).fetchall()
    if ended:
        ((org_id, amount_units),) = ended
        connection.execute(_ADD_HELD_SQL, (-amount_units, org_id))
        return True
    if connection.execute(_HOLD_SQL, (request_id,)).fetchone() is None:
        raise HoldNotFound(request_id)
    return False


def expire_holds(connection: sqlite3.Connection, limit: int, now_ms: int) -> int:
    ended = connection.execute(
        "UPDATE holds SET state = 'expired', ended_at_ms = ? WHERE request_id IN"
        " (SELECT request_id FROM holds WHERE state = 'open' AND expires_at_ms <= ? LIMIT ?)"
        " RETURNING org_id, amount_units",
        (now_ms, now_ms, limit),
    ).fetchall()
    released_by_org: defaultdict[str, int] = defaultdict(int)
    for org_id, amount_units in ended:
        released_by_org[org_id] += amount_units
    connection.executemany(
        _ADD_HELD_SQL, [(-amount, org_id) for org_id, amount in released_by_org.items()]
    )
    return len(ended)


def _existing_credit(
    connection: sqlite3.Connection,
    transaction_id: str,
    org_id: str,
    kind: CreditKind,
    amount_units: int,
) -> CreditResult | None:
    row = connection.execute(
        f"SELECT {CREDIT_COLUMNS} FROM credit_transactions WHERE transaction_id = ?",
        (transaction_id,),
    ).fetchone()
    return None if row is None else credit_replay(credit_from_row(row), org_id, kind, amount_units)


def credit(
    connection: sqlite3.Connection,
    transaction_id: str,
    org_id: str,
    kind: CreditKind,
    amount_units: int,
    reason: str,
    now_ms: int,
) -> CreditResult:
    """Add purchased or granted credit once per id; recorded debt is paid first."""
    if amount_units <= 0:
        raise ValueError("a credit must be positive")
    already = _existing_credit(connection, transaction_id, org_id, kind, amount_units)
    if already is not None:
        return already
    account = load_account(connection, org_id)
    bucket = "purchased" if kind is CreditKind.PURCHASE else "granted"
    paid = debt_payoff(amount_units, account.debt_units)
    connection.execute(
        f"UPDATE accounts SET {bucket}_credits_units = {bucket}_credits_units + ?,"
        f" {bucket}_used_units = {bucket}_used_units + ?, debt_units = debt_units - ?,"
        " updated_at_ms = ? WHERE org_id = ?",
        (amount_units, paid, paid, now_ms, org_id),
    )
    _insert_credit(connection, transaction_id, org_id, kind, amount_units, paid, reason, now_ms)
    created = _existing_credit(connection, transaction_id, org_id, kind, amount_units)
    assert created is not None
    return CreditResult(created.transaction, applied=True)


def refund_purchase(
    connection: sqlite3.Connection,
    refund_id: str,
    org_id: str,
    amount_units: int,
    reason: str,
    now_ms: int,
) -> CreditResult:
    if amount_units <= 0:
        raise ValueError("a refund must be positive")
    already = _existing_credit(connection, refund_id, org_id, CreditKind.REFUND, -amount_units)
    if already is not None:
        return already
    account = load_account(connection, org_id)
    taken_back = min(amount_units, account.purchased_left_units)
    connection.execute(
        "UPDATE accounts SET purchased_credits_units = purchased_credits_units - ?,"
        " debt_units = debt_units + ?, updated_at_ms = ? WHERE org_id = ?",
        (taken_back, amount_units - taken_back, now_ms, org_id),
    )
    _insert_credit(
        connection, refund_id, org_id, CreditKind.REFUND, -amount_units, 0, reason, now_ms
    )
    created = _existing_credit(connection, refund_id, org_id, CreditKind.REFUND, -amount_units)
    assert created is not None
    return CreditResult(created.transaction, applied=True)


def set_subscription(
    connection: sqlite3.Connection, org_id: str, plan: Subscription, now_ms: int
) -> Account:
    if plan.allowance_units < 0:
        raise ValueError("an allowance cannot be negative")
    account = load_account(connection, org_id)
    as_of_ms = to_ms(plan.as_of)
    if is_stale(optional_to_ms(account.subscription_as_of), as_of_ms):
        return account
    period = plan_period(
        plan,
        stored_start_ms=optional_to_ms(account.period_start),
        stored_end_ms=optional_to_ms(account.period_end),
        allowance_units=account.subscription_allowance_units,
        used_units=account.subscription_used_units,
        debt_units=account.debt_units,
    )
    _write_allowance(connection, org_id, period.change, now_ms)
    connection.execute(
        "UPDATE accounts SET subscription_type = ?, subscription_status = ?,"
        " subscription_price_id = ?, subscription_item_id = ?, period_start_ms = ?,"
        " period_end_ms = ?, subscription_as_of_ms = ?, renews_locally = ? WHERE org_id = ?",
        (
            plan.tier,
            plan.status,
            plan.price_id,
            plan.item_id,
            period.start_ms,
            period.end_ms,
            as_of_ms,
            int(plan.renews_locally),
            org_id,
        ),
    )
    reason = f"{plan.tier} period starting {plan.period_start.isoformat()}"
    _record_allowance_change(connection, org_id, period.change, reason, now_ms)
    return load_account(connection, org_id)


def clear_subscription(
    connection: sqlite3.Connection, org_id: str, as_of_ms: int, now_ms: int
) -> Account:
    account = load_account(connection, org_id)
    if is_stale(optional_to_ms(account.subscription_as_of), as_of_ms):
        return account
    change = lapse_allowance(
        account.subscription_allowance_units, account.subscription_used_units, account.debt_units
    )
    _write_allowance(connection, org_id, change, now_ms)
    connection.execute(
        "UPDATE accounts SET subscription_type = 'free', subscription_status = 'canceled',"
        " subscription_price_id = NULL, subscription_item_id = NULL, period_start_ms = NULL,"
        " period_end_ms = NULL, subscription_as_of_ms = ?, renews_locally = 0 WHERE org_id = ?",
        (as_of_ms, org_id),
    )
    _record_allowance_change(connection, org_id, change, "subscription ended", now_ms)
    return load_account(connection, org_id)


def add_access_key(connection: sqlite3.Connection, key: AccessKey) -> None:
    """Store a key once; adding the same key again is a no-op, a different one a conflict."""
    load_account(connection, key.org_id)
    row = connection.execute(
        f"SELECT {KEY_COLUMNS} FROM access_keys WHERE key_id = ? OR token_sha256 = ?",
        (key.key_id, key.token_sha256),
    ).fetchone()
    if row is not None:
        check_key_replay(key_from_row(row), key)
        return
    connection.execute(
        f"INSERT INTO access_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key.key_id,
            key.org_id,
            key.prefix,
            key.token_sha256,
            key.name,
            to_ms(key.created_at),
            None if key.expires_at is None else to_ms(key.expires_at),
            None,
        ),
    )


def revoke_access_key(
    connection: sqlite3.Connection, org_id: str, key_id: str, now_ms: int
) -> AccessKey | None:
    connection.execute(
        "UPDATE access_keys SET revoked_at_ms = ? WHERE org_id = ? AND key_id = ?"
        " AND revoked_at_ms IS NULL",
        (now_ms, org_id, key_id),
    )
    row = connection.execute(
        f"SELECT {KEY_COLUMNS} FROM access_keys WHERE org_id = ? AND key_id = ?", (org_id, key_id)
    ).fetchone()
    return None if row is None else key_from_row(row)


def mark_event(connection: sqlite3.Connection, event_id: str, kind: str, now_ms: int) -> bool:
    inserted = connection.execute(
        "INSERT OR IGNORE INTO processed_events (event_id, kind, processed_at_ms) VALUES (?, ?, ?)",
        (event_id, kind, now_ms),
    ).rowcount
    return bool(inserted)
