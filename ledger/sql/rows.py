"""Rows to ledger models, for both dialects: columns are read by position, in the order
the ``*_COLUMNS`` lists name them (sqlite3 and psycopg both return plain tuples)."""

from ledger.clock import from_ms, optional_from_ms
from ledger.key_limits import BudgetPeriod, KeyLimits
from ledger.models import (
    AccessKey,
    Account,
    CreditKind,
    CreditTransaction,
    UsageDetails,
    UsageRecord,
)
from ledger.sql.routine import Row
from ledger.waterfall import BucketSplit

ACCOUNT_COLUMNS = (
    "org_id, user_id, user_name, user_email, stripe_customer_id, subscription_type,"
    " subscription_status, subscription_price_id, subscription_item_id,"
    " subscription_allowance_units, subscription_used_units, period_start_ms, period_end_ms,"
    " purchased_credits_units, purchased_used_units, granted_credits_units, granted_used_units,"
    " debt_units, subscription_as_of_ms, renews_locally, created_at_ms, updated_at_ms"
)

USAGE_COLUMNS = (
    "request_id, org_id, key_id, model, provider, operation, source, prompt_tokens,"
    " completion_tokens, total_tokens, cost_pico_usd, charged_units, subscription_units,"
    " purchased_units, granted_units, debt_units, latency_ms, status, created_at_ms"
)

CREDIT_COLUMNS = (
    "transaction_id, org_id, kind, amount_units, debt_paid_units, reason, created_at_ms"
)

KEY_COLUMNS = (
    "key_id, org_id, prefix, token_sha256, name, created_at_ms, expires_at_ms, revoked_at_ms,"
    " budget_units, budget_period, rpm, tpm"
)


def account_from_row(row: Row) -> Account:
    return Account(
        org_id=row[0],
        user_id=row[1],
        user_name=row[2],
        user_email=row[3],
        stripe_customer_id=row[4],
        subscription_type=row[5],
        subscription_status=row[6],
        subscription_price_id=row[7],
        subscription_item_id=row[8],
        subscription_allowance_units=row[9],
        subscription_used_units=row[10],
        period_start=optional_from_ms(row[11]),
        period_end=optional_from_ms(row[12]),
        purchased_credits_units=row[13],
        purchased_used_units=row[14],
        granted_credits_units=row[15],
        granted_used_units=row[16],
        debt_units=row[17],
        subscription_as_of=optional_from_ms(row[18]),
        renews_locally=bool(row[19]),
        created_at=from_ms(row[20]),
        updated_at=from_ms(row[21]),
    )


def usage_from_row(row: Row) -> UsageRecord:
    return UsageRecord(
        request_id=row[0],
        org_id=row[1],
        charged_units=row[11],
        split=BucketSplit(row[12], row[13], row[14], row[15]),
        details=UsageDetails(
            model=row[3],
            provider=row[4],
            key_id=row[2],
            operation=row[5],
            source=row[6],
            prompt_tokens=row[7],
            completion_tokens=row[8],
            total_tokens=row[9],
            cost_pico_usd=row[10],
            latency_ms=row[16],
            status=row[17],
        ),
        created_at=from_ms(row[18]),
    )


def usage_row(record: UsageRecord, created_at_ms: int) -> Row:
    """The values of ``USAGE_COLUMNS`` for a record, in their order."""
    details, split = record.details, record.split
    return (
        record.request_id,
        record.org_id,
        details.key_id,
        details.model,
        details.provider,
        details.operation,
        details.source,
        details.prompt_tokens,
        details.completion_tokens,
        details.total_tokens,
        details.cost_pico_usd,
        record.charged_units,
        split.subscription_units,
        split.purchased_units,
        split.granted_units,
        split.debt_units,
        details.latency_ms,
        details.status,
        created_at_ms,
    )


def credit_from_row(row: Row) -> CreditTransaction:
    return CreditTransaction(
        transaction_id=row[0],
        org_id=row[1],
        kind=CreditKind(row[2]),
        amount_units=row[3],
        debt_paid_units=row[4],
        reason=row[5],
        created_at=from_ms(row[6]),
    )


def key_from_row(row: Row) -> AccessKey:
    return AccessKey(
        key_id=row[0],
        org_id=row[1],
        prefix=row[2],
        token_sha256=row[3],
        name=row[4],
        created_at=from_ms(row[5]),
        expires_at=optional_from_ms(row[6]),
        revoked_at=optional_from_ms(row[7]),
        limits=limits_from_row(row[8:12]),
    )


def limits_from_row(row: Row) -> KeyLimits:
    """``budget_units, budget_period, rpm, tpm``."""
    budget_units, period, rpm, tpm = row
    return KeyLimits(budget_units, BudgetPeriod(period), rpm, tpm)
