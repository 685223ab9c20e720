"""Rows to ledger models: the one place that knows SQLite column names."""

import sqlite3

from ledger.clock import from_ms, optional_from_ms
from ledger.models import (
    AccessKey,
    Account,
    CreditKind,
    CreditTransaction,
    UsageDetails,
    UsageRecord,
)
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
    "key_id, org_id, prefix, token_sha256, name, created_at_ms, expires_at_ms, revoked_at_ms"
)


def account_from_row(row: sqlite3.Row) -> Account:
    return Account(
        org_id=row["org_id"],
        user_id=row["user_id"],
        user_name=row["user_name"],
        user_email=row["user_email"],
        stripe_customer_id=row["stripe_customer_id"],
        subscription_type=row["subscription_type"],
        subscription_status=row["subscription_status"],
        subscription_price_id=row["subscription_price_id"],
        subscription_item_id=row["subscription_item_id"],
        subscription_allowance_units=row["subscription_allowance_units"],
        subscription_used_units=row["subscription_used_units"],
        period_start=optional_from_ms(row["period_start_ms"]),
        period_end=optional_from_ms(row["period_end_ms"]),
        purchased_credits_units=row["purchased_credits_units"],
        purchased_used_units=row["purchased_used_units"],
        granted_credits_units=row["granted_credits_units"],
        granted_used_units=row["granted_used_units"],
        debt_units=row["debt_units"],
        subscription_as_of=optional_from_ms(row["subscription_as_of_ms"]),
        renews_locally=bool(row["renews_locally"]),
        created_at=from_ms(row["created_at_ms"]),
        updated_at=from_ms(row["updated_at_ms"]),
    )


def usage_from_row(row: sqlite3.Row) -> UsageRecord:
    return UsageRecord(
        request_id=row["request_id"],
        org_id=row["org_id"],
        charged_units=row["charged_units"],
        split=BucketSplit(
            row["subscription_units"],
            row["purchased_units"],
            row["granted_units"],
            row["debt_units"],
        ),
        details=UsageDetails(
            model=row["model"],
            provider=row["provider"],
            key_id=row["key_id"],
            operation=row["operation"],
            source=row["source"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            total_tokens=row["total_tokens"],
            cost_pico_usd=row["cost_pico_usd"],
            latency_ms=row["latency_ms"],
            status=row["status"],
        ),
        created_at=from_ms(row["created_at_ms"]),
    )


def credit_from_row(row: sqlite3.Row) -> CreditTransaction:
    return CreditTransaction(
        transaction_id=row["transaction_id"],
        org_id=row["org_id"],
        kind=CreditKind(row["kind"]),
        amount_units=row["amount_units"],
        debt_paid_units=row["debt_paid_units"],
        reason=row["reason"],
        created_at=from_ms(row["created_at_ms"]),
    )


def key_from_row(row: sqlite3.Row) -> AccessKey:
    return AccessKey(
        key_id=row["key_id"],
        org_id=row["org_id"],
        prefix=row["prefix"],
        token_sha256=row["token_sha256"],
        name=row["name"],
        created_at=from_ms(row["created_at_ms"]),
        expires_at=optional_from_ms(row["expires_at_ms"]),
        revoked_at=optional_from_ms(row["revoked_at_ms"]),
    )
