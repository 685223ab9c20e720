"""Ledger writes as plain functions of a connection, run by the group-commit writer.

Each function is one atomic operation: the writer wraps it in a SAVEPOINT
inside a ``BEGIN IMMEDIATE`` transaction, so reads and the conditional writes
that follow them cannot interleave with another writer, in this process or
another one on the same file.
"""

import sqlite3
import uuid

from ledger.clock import from_ms, to_ms
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
)
from ledger.periods import (
    AllowanceChange,
    lapse_allowance,
    new_period_allowance,
    roll_forward_ms,
    same_period_allowance,
)
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
from ledger.waterfall import BucketSplit, debt_payoff, payable_units, split_debit


def load_account(connection: sqlite3.Connection, org_id: str) -> Account:
    row = connection.execute(
        f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE org_id = ?", (org_id,)
    ).fetchone()
    if row is None:
        raise AccountNotFound(org_id)
    return account_from_row(row)


def held_units(connection: sqlite3.Connection, org_id: str, now_ms: int) -> int:
    """Open holds that have not expired: an expired hold stops counting at once."""
    (total,) = connection.execute(
        "SELECT COALESCE(SUM(amount_units), 0) FROM holds"
        " WHERE org_id = ? AND state = 'open' AND expires_at_ms > ?",
        (org_id, now_ms),
    ).fetchone()
    return int(total)


def bucket_left_units(account: Account) -> int:
    return account.subscription_left_units + account.purchased_left_units + account.granted_left_units


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
    """Audit lines for an allowance change; their ids are unique because the change itself
    happens once (it is decided on the row read inside this write transaction)."""
    if change.lapsed_units:
        _insert_credit(
            connection,
            f"allowance_expired:{org_id}:{uuid.uuid4().hex}",
            org_id,
            CreditKind.ALLOWANCE_EXPIRED,
            -change.lapsed_units,
            0,
            reason,
            now_ms,
        )
    if change.credited_units:
        _insert_credit(
            connection,
            f"allowance:{org_id}:{uuid.uuid4().hex}",
            org_id,
            CreditKind.ALLOWANCE,
            change.credited_units,
            change.debt_paid_units,
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


def roll_period_if_due(connection: sqlite3.Connection, account: Account, now_ms: int) -> Account:
    """Renew a locally renewed plan whose period has ended; once, however many notice."""
    if not account.renews_locally or account.period_start is None or account.period_end is None:
        return account
    old_start, old_end = to_ms(account.period_start), to_ms(account.period_end)
    if now_ms < old_end:
        return account
    start_ms, end_ms = roll_forward_ms(old_start, old_end, now_ms)
    change = new_period_allowance(
        account.subscription_allowance_units,
        account.subscription_used_units,
        account.subscription_allowance_units,
        account.debt_units,
    )
    _write_allowance(connection, account.org_id, change, now_ms)
    connection.execute(
        "UPDATE accounts SET period_start_ms = ?, period_end_ms = ? WHERE org_id = ?",
        (start_ms, end_ms, account.org_id),
    )
    _record_allowance_change(connection, account.org_id, change, "period renewed", now_ms)
    return load_account(connection, account.org_id)


def create_account(
    connection: sqlite3.Connection,
    org_id: str,
    free_grant_units: int,
    user_id: str | None,
    user_name: str | None,
    user_email: str | None,
    now_ms: int,
) -> Account:
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


def set_stripe_customer(connection: sqlite3.Connection, org_id: str, customer_id: str, now_ms: int) -> str:
    account = load_account(connection, org_id)
    if account.stripe_customer_id:
        return account.stripe_customer_id
    try:
        connection.execute(
            "UPDATE accounts SET stripe_customer_id = ?, updated_at_ms = ? WHERE org_id = ?",
            (customer_id, now_ms, org_id),
        )
    except sqlite3.IntegrityError as error:
        raise IdempotencyConflict("stripe customer", customer_id, "belongs to another org") from error
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
    existing = connection.execute(
        "SELECT org_id, amount_units, expires_at_ms FROM holds WHERE request_id = ?", (request_id,)
    ).fetchone()
    if existing is not None:
        if (existing["org_id"], existing["amount_units"]) != (org_id, amount_units):
            raise IdempotencyConflict("hold", request_id, "different org or amount")
        return HoldPlaced(request_id, org_id, amount_units, from_ms(existing["expires_at_ms"]))
    account = roll_period_if_due(connection, load_account(connection, org_id), now_ms)
    available = account.net_balance_units - held_units(connection, org_id, now_ms)
    if amount_units > available:
        return HoldRefused(request_id, org_id, max(available, 0), amount_units)
    expires_ms = now_ms + int(ttl_s * 1000)
    connection.execute(
        "INSERT INTO holds (request_id, org_id, key_id, amount_units, state, created_at_ms,"
        " expires_at_ms) VALUES (?, ?, ?, ?, 'open', ?, ?)",
        (request_id, org_id, key_id, amount_units, now_ms, expires_ms),
    )
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
    held = connection.execute(
        "SELECT org_id, amount_units, state FROM holds WHERE request_id = ?", (request_id,)
    ).fetchone()
    if held is None:
        raise HoldNotFound(request_id)
    org_id = held["org_id"]
    if held["state"] == HoldState.SETTLED:
        record = usage_from_row(
            connection.execute(
                f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE request_id = ?", (request_id,)
            ).fetchone()
        )
        if record.charged_units != actual_units:
            raise IdempotencyConflict(
                "settlement", request_id, f"settled at {record.charged_units}, not {actual_units}"
            )
        return SettleResult(record, _available(connection, org_id, now_ms), replayed=True)
    if held["state"] != HoldState.OPEN:
        raise HoldNotOpen(request_id, held["state"])
    account = roll_period_if_due(connection, load_account(connection, org_id), now_ms)
    free = bucket_left_units(account) - held_units(connection, org_id, now_ms)
    # This hold may itself have expired by time: it then no longer counts in
    # held_units, and its amount is not reserved either.
    expired_by_time = connection.execute(
        "SELECT expires_at_ms <= ? FROM holds WHERE request_id = ?", (now_ms, request_id)
    ).fetchone()[0]
    reserved = 0 if expired_by_time else held["amount_units"]
    payable = payable_units(actual_units, reserved, free)
    paid = split_debit(
        payable,
        account.subscription_left_units,
        account.purchased_left_units,
        account.granted_left_units,
    )
    split = BucketSplit(
        paid.subscription_units,
        paid.purchased_units,
        paid.granted_units,
        paid.debt_units + actual_units - payable,
    )
    connection.execute(
        "UPDATE accounts SET subscription_used_units = subscription_used_units + ?,"
        " purchased_used_units = purchased_used_units + ?,"
        " granted_used_units = granted_used_units + ?, debt_units = debt_units + ?,"
        " updated_at_ms = ? WHERE org_id = ?",
        (
            split.subscription_units,
            split.purchased_units,
            split.granted_units,
            split.debt_units,
            now_ms,
            org_id,
        ),
    )
    connection.execute(
        "UPDATE holds SET state = 'settled', ended_at_ms = ? WHERE request_id = ?",
        (now_ms, request_id),
    )
    connection.execute(
        f"INSERT INTO usage_records ({USAGE_COLUMNS}) VALUES"
        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    record = usage_from_row(
        connection.execute(
            f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE request_id = ?", (request_id,)
        ).fetchone()
    )
    return SettleResult(record, _available(connection, org_id, now_ms))


def _available(connection: sqlite3.Connection, org_id: str, now_ms: int) -> int:
    account = load_account(connection, org_id)
    return max(0, account.net_balance_units - held_units(connection, org_id, now_ms))


def release(connection: sqlite3.Connection, request_id: str, now_ms: int) -> bool:
    changed = connection.execute(
        "UPDATE holds SET state = 'released', ended_at_ms = ? WHERE request_id = ? AND state = 'open'",
        (now_ms, request_id),
    ).rowcount
    if changed:
        return True
    if connection.execute("SELECT 1 FROM holds WHERE request_id = ?", (request_id,)).fetchone() is None:
        raise HoldNotFound(request_id)
    return False


def expire_holds(connection: sqlite3.Connection, limit: int, now_ms: int) -> int:
    return connection.execute(
        "UPDATE holds SET state = 'expired', ended_at_ms = ? WHERE request_id IN"
        " (SELECT request_id FROM holds WHERE state = 'open' AND expires_at_ms <= ? LIMIT ?)",
        (now_ms, now_ms, limit),
    ).rowcount


def _existing_credit(
    connection: sqlite3.Connection, transaction_id: str, org_id: str, kind: CreditKind, amount_units: int
) -> CreditResult | None:
    row = connection.execute(
        f"SELECT {CREDIT_COLUMNS} FROM credit_transactions WHERE transaction_id = ?",
        (transaction_id,),
    ).fetchone()
    if row is None:
        return None
    transaction = credit_from_row(row)
    if (transaction.org_id, transaction.kind, transaction.amount_units) != (org_id, kind, amount_units):
        raise IdempotencyConflict("credit", transaction_id, "different org, kind or amount")
    return CreditResult(transaction, applied=False)


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
    _insert_credit(connection, refund_id, org_id, CreditKind.REFUND, -amount_units, 0, reason, now_ms)
    created = _existing_credit(connection, refund_id, org_id, CreditKind.REFUND, -amount_units)
    assert created is not None
    return CreditResult(created.transaction, applied=True)


def set_subscription(
    connection: sqlite3.Connection, org_id: str, plan: Subscription, now_ms: int
) -> Account:
    account = load_account(connection, org_id)
    as_of_ms = to_ms(plan.as_of)
    if account.subscription_as_of is not None and as_of_ms < to_ms(account.subscription_as_of):
        return account
    start_ms, end_ms = to_ms(plan.period_start), to_ms(plan.period_end)
    stored_start = account.period_start
    is_new_period = stored_start is None or start_ms > to_ms(stored_start)
    rule = new_period_allowance if is_new_period else same_period_allowance
    change = rule(
        account.subscription_allowance_units,
        account.subscription_used_units,
        plan.allowance_units,
        account.debt_units,
    )
    if not is_new_period:
        assert stored_start is not None and account.period_end is not None
        start_ms, end_ms = to_ms(stored_start), max(end_ms, to_ms(account.period_end))
    _write_allowance(connection, org_id, change, now_ms)
    connection.execute(
        "UPDATE accounts SET subscription_type = ?, subscription_status = ?,"
        " subscription_price_id = ?, subscription_item_id = ?, period_start_ms = ?,"
        " period_end_ms = ?, subscription_as_of_ms = ?, renews_locally = ? WHERE org_id = ?",
        (
            plan.tier,
            plan.status,
            plan.price_id,
            plan.item_id,
            start_ms,
            end_ms,
            as_of_ms,
            int(plan.renews_locally),
            org_id,
        ),
    )
    reason = f"{plan.tier} period starting {plan.period_start.isoformat()}"
    _record_allowance_change(connection, org_id, change, reason, now_ms)
    return load_account(connection, org_id)


def clear_subscription(
    connection: sqlite3.Connection, org_id: str, as_of_ms: int, now_ms: int
) -> Account:
    account = load_account(connection, org_id)
    if account.subscription_as_of is not None and as_of_ms < to_ms(account.subscription_as_of):
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
    load_account(connection, key.org_id)
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
    return bool(
        connection.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, kind, processed_at_ms) VALUES (?, ?, ?)",
            (event_id, kind, now_ms),
        ).rowcount
    )
