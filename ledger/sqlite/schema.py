"""Versioned SQLite schema: a fresh file and an old file both come up at the current version.

CHECK constraints restate the ledger invariants (no bucket below zero, no
debt below zero, no negative total of open holds), so a bug in an operation
aborts its savepoint instead of writing a bad balance.
"""

import sqlite3

from ledger.errors import LedgerSchemaTooNew

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        org_id TEXT PRIMARY KEY,
        user_id TEXT,
        user_name TEXT,
        user_email TEXT,
        stripe_customer_id TEXT UNIQUE,
        subscription_type TEXT NOT NULL DEFAULT 'free',
        subscription_status TEXT,
        subscription_price_id TEXT,
        subscription_item_id TEXT,
        subscription_allowance_units INTEGER NOT NULL DEFAULT 0,
        subscription_used_units INTEGER NOT NULL DEFAULT 0,
        period_start_ms INTEGER,
        period_end_ms INTEGER,
        purchased_credits_units INTEGER NOT NULL DEFAULT 0,
        purchased_used_units INTEGER NOT NULL DEFAULT 0,
        granted_credits_units INTEGER NOT NULL DEFAULT 0,
        granted_used_units INTEGER NOT NULL DEFAULT 0,
        debt_units INTEGER NOT NULL DEFAULT 0,
        subscription_as_of_ms INTEGER,
        renews_locally INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        CHECK (subscription_used_units >= 0
               AND subscription_used_units <= subscription_allowance_units),
        CHECK (purchased_used_units >= 0 AND purchased_used_units <= purchased_credits_units),
        CHECK (granted_used_units >= 0 AND granted_used_units <= granted_credits_units),
        CHECK (debt_units >= 0)
    );
    CREATE TABLE holds (
        request_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES accounts(org_id),
        key_id TEXT,
        amount_units INTEGER NOT NULL CHECK (amount_units >= 0),
        state TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER
    );
    CREATE INDEX holds_open_by_org ON holds(org_id, expires_at_ms) WHERE state = 'open';
    CREATE INDEX holds_open_by_expiry ON holds(expires_at_ms) WHERE state = 'open';
    CREATE TABLE usage_records (
        request_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        key_id TEXT,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        operation TEXT NOT NULL,
        source TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        total_tokens INTEGER NOT NULL,
        cost_pico_usd INTEGER NOT NULL,
        charged_units INTEGER NOT NULL CHECK (charged_units >= 0),
        subscription_units INTEGER NOT NULL,
        purchased_units INTEGER NOT NULL,
        granted_units INTEGER NOT NULL,
        debt_units INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX usage_by_org_time ON usage_records(org_id, created_at_ms);
    CREATE INDEX usage_by_time ON usage_records(created_at_ms);
    CREATE TABLE credit_transactions (
        transaction_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        amount_units INTEGER NOT NULL,
        debt_paid_units INTEGER NOT NULL,
        reason TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX credit_by_org_time ON credit_transactions(org_id, created_at_ms);
    CREATE TABLE access_keys (
        key_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        prefix TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        name TEXT,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER,
        revoked_at_ms INTEGER
    );
    CREATE INDEX access_keys_by_org ON access_keys(org_id);
    CREATE TABLE processed_events (
        event_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        processed_at_ms INTEGER NOT NULL
    );
    """,
    # 2: a running total of open holds per account, so placing a hold costs the
    # same with 10 or 10,000 open holds (it used to sum them on every hold).
    # It counts open holds whether or not their expiry has passed; readers
    # subtract the expired-but-not-yet-swept ones, a short index range.
    """
    ALTER TABLE accounts ADD COLUMN open_hold_units INTEGER NOT NULL DEFAULT 0
        CHECK (open_hold_units >= 0);
    UPDATE accounts SET open_hold_units = (
        SELECT COALESCE(SUM(amount_units), 0) FROM holds
        WHERE holds.org_id = accounts.org_id AND holds.state = 'open'
    );
    """,
    # 3: which org owns which response an upstream stores (the Responses API), so that
    # only it can read, continue or delete that response through the gateway.
    """
    CREATE TABLE response_owners (
        response_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES accounts(org_id),
        model TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX response_owners_by_time ON response_owners(created_at_ms);
    """,
    # 4: idempotency keys of metered calls, each with the reply its call settled with
    # (``ledger.reply_keys``); a key whose call has not settled has no content type.
    """
    CREATE TABLE idempotent_replies (
        org_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        request_id TEXT NOT NULL UNIQUE,
        expires_at_ms INTEGER NOT NULL,
        content_type TEXT,
        body BLOB,
        PRIMARY KEY (org_id, idempotency_key)
    );
    CREATE INDEX idempotent_replies_by_expiry ON idempotent_replies(expires_at_ms);
    """,
    # 5: per-key limits (``ledger.key_limits``). A key with a budget keeps a running total
    # of what its current window settled; its open holds are summed from the holds
    # (an index of open holds by key). ``tokens`` is set on the holds of rate-limited
    # keys only, so only they pay for the index the rpm and tpm windows read.
    """
    ALTER TABLE access_keys ADD COLUMN budget_units INTEGER CHECK (budget_units >= 0);
    ALTER TABLE access_keys ADD COLUMN budget_period TEXT NOT NULL DEFAULT 'total';
    ALTER TABLE access_keys ADD COLUMN rpm INTEGER CHECK (rpm > 0);
    ALTER TABLE access_keys ADD COLUMN tpm INTEGER CHECK (tpm > 0);
    ALTER TABLE access_keys ADD COLUMN limits_set_at_ms INTEGER;
    ALTER TABLE access_keys ADD COLUMN limits_committed_units INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE access_keys ADD COLUMN window_start_ms INTEGER;
    ALTER TABLE access_keys ADD COLUMN window_spent_units INTEGER NOT NULL DEFAULT 0
        CHECK (window_spent_units >= 0);
    ALTER TABLE holds ADD COLUMN tokens INTEGER CHECK (tokens >= 0);
    CREATE INDEX holds_open_by_key ON holds(key_id, expires_at_ms, amount_units)
        WHERE state = 'open' AND key_id IS NOT NULL;
    CREATE INDEX holds_rated_by_key ON holds(key_id, created_at_ms, tokens)
        WHERE tokens IS NOT NULL;
    """,
    # 6: balance watches, alert and auto-recharge settings, recharges and the outbox
    # (``ledger.outbox``). ``watch_floor_units`` is the highest armed threshold, so a
    # settlement reads the watches only when it may have crossed one.
    """
    ALTER TABLE accounts ADD COLUMN watch_floor_units INTEGER;
    CREATE TABLE balance_watches (
        org_id TEXT NOT NULL REFERENCES accounts(org_id),
        kind TEXT NOT NULL,
        threshold_units INTEGER NOT NULL,
        armed INTEGER NOT NULL,
        PRIMARY KEY (org_id, kind, threshold_units)
    );
    CREATE TABLE alert_settings (
        org_id TEXT PRIMARY KEY REFERENCES accounts(org_id),
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE auto_recharge_settings (
        org_id TEXT PRIMARY KEY REFERENCES accounts(org_id),
        threshold_units INTEGER NOT NULL CHECK (threshold_units > 0),
        amount_units INTEGER NOT NULL CHECK (amount_units > 0),
        monthly_cap_units INTEGER NOT NULL CHECK (monthly_cap_units >= 0),
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE recharges (
        recharge_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        amount_units INTEGER NOT NULL CHECK (amount_units > 0),
        month_start_ms INTEGER NOT NULL,
        state TEXT NOT NULL,
        payment_intent_id TEXT,
        reason TEXT,
        created_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER
    );
    CREATE INDEX recharges_by_org_month ON recharges(org_id, month_start_ms);
    CREATE TABLE outbox (
        event_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        kind TEXT NOT NULL,
        balance_units INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        threshold_units INTEGER,
        amount_units INTEGER,
        reference TEXT,
        reason TEXT,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at_ms INTEGER NOT NULL,
        claimed_until_ms INTEGER,
        ended_at_ms INTEGER
    );
    CREATE INDEX outbox_due ON outbox(topic, next_attempt_at_ms) WHERE state = 'pending';
    CREATE INDEX outbox_by_org ON outbox(org_id, created_at_ms);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection) -> int:
    """Apply every migration newer than the file's ``user_version``; returns the version."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        (current,) = connection.execute("PRAGMA user_version").fetchone()
        if current > SCHEMA_VERSION:
            raise LedgerSchemaTooNew(current, SCHEMA_VERSION)
        for version in range(current, SCHEMA_VERSION):
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        connection.rollback()
        raise
    return SCHEMA_VERSION
