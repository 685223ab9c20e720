"""A ledger file written by an older gateway comes up at the current schema, data intact.

Upgrading a deployment means starting the new gateway on the old file: every
migration newer than the file's ``PRAGMA user_version`` runs once, at open,
and balances, open holds and history survive it. The old files are built by
hand here, exactly as an older gateway left them (migrations are append-only,
so ``MIGRATIONS[:k]`` is what a version-k gateway created).
"""

import sqlite3
import time
from pathlib import Path

import pytest

from ledger import UNITS_PER_SPU, LedgerUnavailable, UsageDetails
from ledger.sqlite import SqliteLedger
from ledger.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from ledger.verify import verify

ORG = "org_upgraded"
GRANT_UNITS = 10 * UNITS_PER_SPU
OPEN_HOLD_UNITS = 2 * UNITS_PER_SPU
OLD_REQUEST = "req_left_open_by_the_old_gateway"


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
    return int(version)


def _write_old_file(path: Path, version: int) -> None:
    """A file at schema ``version`` holding one org with a grant and an open hold."""
    now_ms = int(time.time() * 1000)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in MIGRATIONS[:version]:
            connection.executescript(migration)
        connection.execute(
            "INSERT INTO accounts (org_id, granted_credits_units, created_at_ms, updated_at_ms)"
            " VALUES (?, ?, ?, ?)",
            (ORG, GRANT_UNITS, now_ms, now_ms),
        )
        connection.execute(
            "INSERT INTO credit_transactions (transaction_id, org_id, kind, amount_units,"
            " debt_paid_units, reason, created_at_ms) VALUES (?, ?, 'free_tier', ?, 0, ?, ?)",
            (f"free_tier:{ORG}", ORG, GRANT_UNITS, "free tier", now_ms),
        )
        connection.execute(
            "INSERT INTO holds (request_id, org_id, amount_units, state, created_at_ms,"
            " expires_at_ms) VALUES (?, ?, ?, 'open', ?, ?)",
            (OLD_REQUEST, ORG, OPEN_HOLD_UNITS, now_ms, now_ms + 3_600_000),
        )
        if version >= 2:
            # From schema 2 on, a gateway keeps the running total of open holds with them.
            connection.execute(
                "UPDATE accounts SET open_hold_units = open_hold_units + ? WHERE org_id = ?",
                (OPEN_HOLD_UNITS, ORG),
            )
        connection.execute(f"PRAGMA user_version = {version}")
    finally:
        connection.close()


async def test_a_fresh_file_comes_up_at_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    store = SqliteLedger(path)
    await store.open()
    try:
        account = await store.create_account(ORG, free_grant_units=GRANT_UNITS)
        assert account.granted_left_units == GRANT_UNITS
    finally:
        await store.close()
    assert _user_version(path) == SCHEMA_VERSION


@pytest.mark.parametrize("old_version", range(1, SCHEMA_VERSION))
async def test_an_old_file_comes_up_at_the_current_schema_with_its_balances_and_holds(
    tmp_path: Path, old_version: int
) -> None:
    path = tmp_path / f"v{old_version}.db"
    _write_old_file(path, old_version)

    store = SqliteLedger(path)
    await store.open()
    try:
        assert _user_version(path) == SCHEMA_VERSION
        balance = await store.balance(ORG)
        assert balance.held_units == OPEN_HOLD_UNITS
        assert balance.available_units == GRANT_UNITS - OPEN_HOLD_UNITS

        settled = await store.settle(
            OLD_REQUEST, UNITS_PER_SPU, UsageDetails(model="spu-demo", provider="demo")
        )
        assert settled.record.charged_units == UNITS_PER_SPU
        assert (await store.balance(ORG)).available_units == GRANT_UNITS - UNITS_PER_SPU
        checked, problems = await verify(store)
        assert (checked, problems) == (1, [])
    finally:
        await store.close()


async def test_opening_an_upgraded_file_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _write_old_file(path, 1)
    for _ in range(2):
        store = SqliteLedger(path)
        await store.open()
        try:
            assert (await store.balance(ORG)).held_units == OPEN_HOLD_UNITS
        finally:
            await store.close()
    assert _user_version(path) == SCHEMA_VERSION


async def test_a_file_from_a_newer_gateway_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    _write_old_file(path, SCHEMA_VERSION)
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")

    store = SqliteLedger(path)
    with pytest.raises(LedgerUnavailable, match="newer than this gateway"):
        await store.open()
    assert _user_version(path) == SCHEMA_VERSION + 1
