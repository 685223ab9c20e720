"""Versioned PostgreSQL schema, migrated at open under an advisory lock.

The tables are SQLite's (``ledger.sqlite.schema``) in PostgreSQL's types, with
the ledger's invariants restated as CHECK constraints, more of them than
SQLite's ALTER TABLE allows: no bucket below zero or above what it holds, no
debt below zero, a usage record's split adding up to its charge, an ended
hold's end time, known states and kinds. A bug in an operation then aborts its
transaction instead of writing a bad balance. Identifiers use the "C"
collation, so ids sort by code point as in SQLite, and ``seq`` columns keep
insertion order where SQLite uses ``rowid``.

Gateways starting together take ``pg_advisory_xact_lock`` before reading the
version, so exactly one applies each migration and the others then find it
applied.
"""

from psycopg import AsyncConnection

from ledger.errors import LedgerSchemaTooNew

MIGRATION_LOCK_KEY = 0x5350_5547_4C45_4447
"""``pg_advisory_xact_lock`` key of schema migrations ("SPUGLEDG"): one per database."""

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        org_id TEXT COLLATE "C" PRIMARY KEY,
        user_id TEXT,
        user_name TEXT,
        user_email TEXT,
        stripe_customer_id TEXT COLLATE "C" UNIQUE,
        subscription_type TEXT NOT NULL DEFAULT 'free',
        subscription_status TEXT,
        subscription_price_id TEXT,
        subscription_item_id TEXT,
        subscription_allowance_units BIGINT NOT NULL DEFAULT 0,
        subscription_used_units BIGINT NOT NULL DEFAULT 0,
        period_start_ms BIGINT,
        period_end_ms BIGINT,
        purchased_credits_units BIGINT NOT NULL DEFAULT 0,
        purchased_used_units BIGINT NOT NULL DEFAULT 0,
        granted_credits_units BIGINT NOT NULL DEFAULT 0,
        granted_used_units BIGINT NOT NULL DEFAULT 0,
        debt_units BIGINT NOT NULL DEFAULT 0,
        subscription_as_of_ms BIGINT,
        renews_locally BOOLEAN NOT NULL DEFAULT FALSE,
        open_hold_units BIGINT NOT NULL DEFAULT 0,
        created_at_ms BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        CHECK (subscription_used_units >= 0
               AND subscription_used_units <= subscription_allowance_units),
        CHECK (purchased_used_units >= 0 AND purchased_used_units <= purchased_credits_units),
        CHECK (granted_used_units >= 0 AND granted_used_units <= granted_credits_units),
        CHECK (debt_units >= 0),
        CHECK (open_hold_units >= 0),
        CHECK ((period_start_ms IS NULL) = (period_end_ms IS NULL)),
        CHECK (period_end_ms > period_start_ms),
        CHECK (NOT renews_locally OR period_end_ms IS NOT NULL)
    );
    CREATE TABLE holds (
        request_id TEXT COLLATE "C" PRIMARY KEY,
        org_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (org_id),
        key_id TEXT,
        amount_units BIGINT NOT NULL CHECK (amount_units >= 0),
        state TEXT NOT NULL CHECK (state IN ('open', 'settled', 'released', 'expired')),
        created_at_ms BIGINT NOT NULL,
        expires_at_ms BIGINT NOT NULL CHECK (expires_at_ms >= created_at_ms),
        ended_at_ms BIGINT,
        CHECK ((state = 'open') = (ended_at_ms IS NULL))
    );
    CREATE INDEX holds_open_by_org ON holds (org_id, expires_at_ms) WHERE state = 'open';
    CREATE INDEX holds_open_by_expiry ON holds (expires_at_ms) WHERE state = 'open';
    CREATE TABLE usage_records (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        request_id TEXT COLLATE "C" PRIMARY KEY REFERENCES holds (request_id),
        org_id TEXT COLLATE "C" NOT NULL,
        key_id TEXT,
        model TEXT NOT NULL,
        provider TEXT NOT NULL,
        operation TEXT NOT NULL,
        source TEXT NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        total_tokens BIGINT NOT NULL,
        cost_pico_usd BIGINT NOT NULL,
        charged_units BIGINT NOT NULL CHECK (charged_units >= 0),
        subscription_units BIGINT NOT NULL CHECK (subscription_units >= 0),
        purchased_units BIGINT NOT NULL CHECK (purchased_units >= 0),
        granted_units BIGINT NOT NULL CHECK (granted_units >= 0),
        debt_units BIGINT NOT NULL CHECK (debt_units >= 0),
        latency_ms BIGINT NOT NULL,
        status TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        CHECK (charged_units = subscription_units + purchased_units + granted_units + debt_units)
    );
    CREATE INDEX usage_by_org_time ON usage_records (org_id, created_at_ms);
    CREATE INDEX usage_by_time ON usage_records (created_at_ms);
    CREATE TABLE credit_transactions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        transaction_id TEXT COLLATE "C" PRIMARY KEY,
        org_id TEXT COLLATE "C" NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('free_tier', 'grant', 'purchase', 'refund',
                                           'allowance', 'allowance_expired')),
        amount_units BIGINT NOT NULL,
        debt_paid_units BIGINT NOT NULL CHECK (debt_paid_units >= 0),
        reason TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL
    );
    CREATE INDEX credit_by_org_time ON credit_transactions (org_id, created_at_ms);
    CREATE TABLE access_keys (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        key_id TEXT COLLATE "C" PRIMARY KEY,
        org_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (org_id),
        prefix TEXT NOT NULL,
        token_sha256 TEXT COLLATE "C" NOT NULL UNIQUE,
        name TEXT,
        created_at_ms BIGINT NOT NULL,
        expires_at_ms BIGINT,
        revoked_at_ms BIGINT
    );
    CREATE INDEX access_keys_by_org ON access_keys (org_id);
    CREATE TABLE processed_events (
        event_id TEXT COLLATE "C" PRIMARY KEY,
        kind TEXT NOT NULL,
        processed_at_ms BIGINT NOT NULL
    );
    """,
    # 2: which org owns which response an upstream stores (the Responses API).
    """
    CREATE TABLE response_owners (
        response_id TEXT COLLATE "C" PRIMARY KEY,
        org_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (org_id),
        model TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL
    );
    CREATE INDEX response_owners_by_time ON response_owners (created_at_ms);
    """,
    # 3: idempotency keys of metered calls, each with the reply its call settled with.
    """
    CREATE TABLE idempotent_replies (
        org_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (org_id),
        idempotency_key TEXT COLLATE "C" NOT NULL,
        fingerprint TEXT NOT NULL,
        request_id TEXT COLLATE "C" NOT NULL UNIQUE,
        expires_at_ms BIGINT NOT NULL,
        content_type TEXT,
        body BYTEA,
        PRIMARY KEY (org_id, idempotency_key),
        CHECK (body IS NULL OR content_type IS NOT NULL)
    );
    CREATE INDEX idempotent_replies_by_expiry ON idempotent_replies (expires_at_ms);
    """,
    # 4: per-key limits, as SQLite's migration 5.
    """
    ALTER TABLE access_keys
        ADD COLUMN budget_units BIGINT CHECK (budget_units >= 0),
        ADD COLUMN budget_period TEXT NOT NULL DEFAULT 'total'
            CHECK (budget_period IN ('day', 'week', 'month', 'total')),
        ADD COLUMN rpm BIGINT CHECK (rpm > 0),
        ADD COLUMN tpm BIGINT CHECK (tpm > 0),
        ADD COLUMN limits_set_at_ms BIGINT,
        ADD COLUMN limits_committed_units BIGINT NOT NULL DEFAULT 0
            CHECK (limits_committed_units >= 0),
        ADD COLUMN window_start_ms BIGINT,
        ADD COLUMN window_spent_units BIGINT NOT NULL DEFAULT 0 CHECK (window_spent_units >= 0);
    ALTER TABLE holds ADD COLUMN tokens BIGINT CHECK (tokens >= 0);
    CREATE INDEX holds_open_by_key ON holds (key_id, expires_at_ms, amount_units)
        WHERE state = 'open' AND key_id IS NOT NULL;
    CREATE INDEX holds_rated_by_key ON holds (key_id, created_at_ms, tokens)
        WHERE tokens IS NOT NULL;
    """,
    # 5: balance watches, alert and auto-recharge settings, recharges and the outbox, as
    # SQLite's migration 6.
    """
    ALTER TABLE accounts ADD COLUMN watch_floor_units BIGINT;
    CREATE TABLE balance_watches (
        org_id TEXT COLLATE "C" NOT NULL REFERENCES accounts (org_id),
        kind TEXT NOT NULL CHECK (kind IN ('low', 'depleted', 'recharge')),
        threshold_units BIGINT NOT NULL,
        armed BOOLEAN NOT NULL,
        PRIMARY KEY (org_id, kind, threshold_units)
    );
    CREATE TABLE alert_settings (
        org_id TEXT COLLATE "C" PRIMARY KEY REFERENCES accounts (org_id),
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        updated_at_ms BIGINT NOT NULL
    );
    CREATE TABLE auto_recharge_settings (
        org_id TEXT COLLATE "C" PRIMARY KEY REFERENCES accounts (org_id),
        threshold_units BIGINT NOT NULL CHECK (threshold_units > 0),
        amount_units BIGINT NOT NULL CHECK (amount_units > 0),
        monthly_cap_units BIGINT NOT NULL CHECK (monthly_cap_units >= 0),
        updated_at_ms BIGINT NOT NULL
    );
    CREATE TABLE recharges (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        recharge_id TEXT COLLATE "C" PRIMARY KEY,
        org_id TEXT COLLATE "C" NOT NULL,
        amount_units BIGINT NOT NULL CHECK (amount_units > 0),
        month_start_ms BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
        payment_intent_id TEXT,
        reason TEXT,
        created_at_ms BIGINT NOT NULL,
        ended_at_ms BIGINT
    );
    CREATE INDEX recharges_by_org_month ON recharges (org_id, month_start_ms);
    CREATE TABLE outbox (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        event_id TEXT COLLATE "C" PRIMARY KEY,
        org_id TEXT COLLATE "C" NOT NULL,
        topic TEXT NOT NULL CHECK (topic IN ('alert', 'recharge')),
        kind TEXT NOT NULL,
        balance_units BIGINT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        threshold_units BIGINT,
        amount_units BIGINT,
        reference TEXT,
        reason TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at_ms BIGINT NOT NULL,
        claimed_until_ms BIGINT,
        ended_at_ms BIGINT
    );
    CREATE INDEX outbox_due ON outbox (topic, next_attempt_at_ms) WHERE state = 'pending';
    CREATE INDEX outbox_by_org ON outbox (org_id, created_at_ms);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

_VERSIONS_TABLE = """
    CREATE TABLE IF NOT EXISTS ledger_schema_versions (
        version INTEGER PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
"""


async def migrate(connection: AsyncConnection[tuple[object, ...]]) -> int:
    """Apply every migration the database lacks, in one transaction; returns the version."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        await connection.execute(_VERSIONS_TABLE)
        cursor = await connection.execute(
            "SELECT COALESCE(MAX(version), 0) FROM ledger_schema_versions"
        )
        row = await cursor.fetchone()
        current = int(row[0]) if row is not None else 0  # type: ignore[call-overload]
        if current > SCHEMA_VERSION:
            raise LedgerSchemaTooNew(current, SCHEMA_VERSION)
        for version in range(current, SCHEMA_VERSION):
            await connection.execute(MIGRATIONS[version], prepare=False)
            await connection.execute(
                "INSERT INTO ledger_schema_versions (version) VALUES (%s)", (version + 1,)
            )
    return SCHEMA_VERSION
