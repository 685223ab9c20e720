"""The embedded SQLite ledger: WAL, ``synchronous=FULL``, group commit, several processes.

Writes go through one ``GroupCommitWriter`` per process; reads run on a small
thread pool of read-only connections (WAL lets them proceed while a write
commits), so the event loop never blocks on the database, except for the one
commit of a write made while nothing else is going on (``commit_inline_while``);
a ``Checkpointer`` thread copies the WAL back into the file so that no commit has to.
"""

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from ledger.clock import Clock, system_clock, to_ms
from ledger.errors import LedgerUnavailable
from ledger.models import (
    AccessKey,
    Account,
    Balance,
    CreditKind,
    CreditResult,
    CreditTransaction,
    HoldPlaced,
    HoldRefused,
    OrgLedgerFigures,
    SettleResult,
    Subscription,
    UsageDetails,
    UsageGroup,
    UsageRecord,
    UsageTotal,
)
from ledger.sqlite import operations as ops
from ledger.sqlite.checkpoint import WRITER_AUTOCHECKPOINT_PAGES, Checkpointer
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
from ledger.sqlite.schema import migrate
from ledger.sqlite.writer import DEFAULT_MAX_BATCH, GroupCommitWriter
from ledger.waterfall import BucketSplit

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
READER_THREADS = 4

_GROUP_EXPRESSIONS: dict[str, str] = {
    "model": "model",
    "key": "COALESCE(key_id, '')",
    "day": "strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch')",
}


MIN_SQLITE_VERSION = (3, 35, 0)
"""``UPDATE … RETURNING`` (3.35) ends a hold and tells whose it was in one statement."""


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise LedgerUnavailable(
            f"SQLite {sqlite3.sqlite_version} is too old for the ledger; it needs 3.35 or newer"
        )
    if read_only:
        connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not read_only:
        connection.execute("PRAGMA journal_mode = WAL")
        # FULL: every commit fsyncs the WAL, so a power loss loses no committed
        # operation. Group commit amortises that fsync over a whole batch.
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
    return connection


class SqliteLedger:
    """``LedgerStore`` on one SQLite file, safe for several worker processes."""

    def __init__(
        self, path: str | Path, *, clock: Clock = system_clock, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._writer = GroupCommitWriter(
            self._open_writer, max_batch=max_batch, busy_timeout_s=BUSY_TIMEOUT_MS / 1000
        )
        self._checkpointer = Checkpointer(partial(_connect, self.path, read_only=False))
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _open_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = _connect(self.path, read_only=False)
        connection.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}")
        migrate(connection)
        # From here the writer waits for other processes itself (GroupCommitWriter._begin).
        connection.execute("PRAGMA busy_timeout = 0")
        return connection

    async def open(self) -> None:
        if self._readers is not None:
            return
        await asyncio.to_thread(self._writer.start)
        self._checkpointer.start()
        self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="ledger-reader")

    async def close(self) -> None:
        if self._readers is None:
            return
        await asyncio.to_thread(self._writer.stop)
        await asyncio.to_thread(self._checkpointer.stop)
        self._readers.shutdown(wait=True)
        self._readers = None

    def commit_inline_while(self, alone: Callable[[], bool]) -> None:
        """Writes commit on the caller's thread while ``alone()`` (``GroupCommitWriter``)."""
        self._writer.commit_inline_while(alone)

    async def _write(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.run(operation)

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = _connect(self.path, read_only=True)
            self._local.connection = connection
        return connection

    async def _read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise LedgerUnavailable("the ledger is not open")

        def run() -> T:
            connection = self._reader()
            connection.execute("BEGIN")
            try:
                return query(connection)
            finally:
                connection.execute("COMMIT")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, run)
        except sqlite3.Error as error:
            raise LedgerUnavailable(f"the ledger cannot be read: {error}") from error

    async def ping(self) -> None:
        self._writer.check_running()
        await self._read(lambda connection: connection.execute("SELECT 1").fetchone())

    # accounts
    async def create_account(
        self,
        org_id: str,
        *,
        free_grant_units: int,
        user_id: str | None = None,
        user_name: str | None = None,
        user_email: str | None = None,
    ) -> Account:
        return await self._write(
            partial(
                ops.create_account,
                org_id=org_id,
                free_grant_units=free_grant_units,
                user_id=user_id,
                user_name=user_name,
                user_email=user_email,
                now_ms=self._now_ms(),
            )
        )

    async def get_account(self, org_id: str) -> Account:
        return await self._read(partial(ops.load_account, org_id=org_id))

    async def list_accounts(self, *, limit: int = 100, after_org_id: str = "") -> list[Account]:
        def query(connection: sqlite3.Connection) -> list[Account]:
            rows = connection.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE org_id > ? ORDER BY org_id LIMIT ?",
                (after_org_id, limit),
            ).fetchall()
            return [account_from_row(row) for row in rows]

        return await self._read(query)

    async def set_stripe_customer(self, org_id: str, customer_id: str) -> str:
        return await self._write(
            partial(
                ops.set_stripe_customer,
                org_id=org_id,
                customer_id=customer_id,
                now_ms=self._now_ms(),
            )
        )

    async def find_org_by_stripe_customer(self, customer_id: str) -> str | None:
        def query(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT org_id FROM accounts WHERE stripe_customer_id = ?", (customer_id,)
            ).fetchone()
            return None if row is None else str(row["org_id"])

        return await self._read(query)

    # holds and settlement
    async def hold(
        self,
        org_id: str,
        amount_units: int,
        request_id: str,
        ttl_s: float,
        key_id: str | None = None,
    ) -> HoldPlaced | HoldRefused:
        return await self._write(
            partial(
                ops.hold,
                org_id=org_id,
                amount_units=amount_units,
                request_id=request_id,
                ttl_s=ttl_s,
                key_id=key_id,
                now_ms=self._now_ms(),
            )
        )

    async def settle(
        self, request_id: str, actual_units: int, details: UsageDetails
    ) -> SettleResult:
        return await self._write(
            partial(
                ops.settle,
                request_id=request_id,
                actual_units=actual_units,
                details=details,
                now_ms=self._now_ms(),
            )
        )

    async def release(self, request_id: str) -> bool:
        return await self._write(partial(ops.release, request_id=request_id, now_ms=self._now_ms()))

    async def expire_holds(self, *, limit: int = 1000) -> int:
        return await self._write(partial(ops.expire_holds, limit=limit, now_ms=self._now_ms()))

    async def balance(self, org_id: str) -> Balance:
        now_ms = self._now_ms()

        def query(connection: sqlite3.Connection) -> Balance:
            account = ops.load_account(connection, org_id)
            return Balance(account, ops.held_units(connection, org_id, now_ms))

        return await self._read(query)

    # credits
    async def credit_purchase(
        self, session_id: str, org_id: str, amount_units: int, reason: str = "purchase"
    ) -> CreditResult:
        return await self._write(
            partial(
                ops.credit,
                transaction_id=f"purchase:{session_id}",
                org_id=org_id,
                kind=CreditKind.PURCHASE,
                amount_units=amount_units,
                reason=reason,
                now_ms=self._now_ms(),
            )
        )

    async def grant(
        self, org_id: str, amount_units: int, reason: str, idempotency_key: str
    ) -> CreditResult:
        return await self._write(
            partial(
                ops.credit,
                transaction_id=f"grant:{idempotency_key}",
                org_id=org_id,
                kind=CreditKind.GRANT,
                amount_units=amount_units,
                reason=reason,
                now_ms=self._now_ms(),
            )
        )

    async def refund_purchase(
        self, refund_id: str, org_id: str, amount_units: int, reason: str
    ) -> CreditResult:
        return await self._write(
            partial(
                ops.refund_purchase,
                refund_id=f"refund:{refund_id}",
                org_id=org_id,
                amount_units=amount_units,
                reason=reason,
                now_ms=self._now_ms(),
            )
        )

    async def credit_transactions(
        self, org_id: str, *, limit: int = 100
    ) -> list[CreditTransaction]:
        def query(connection: sqlite3.Connection) -> list[CreditTransaction]:
            rows = connection.execute(
                f"SELECT {CREDIT_COLUMNS} FROM credit_transactions WHERE org_id = ?"
                " ORDER BY created_at_ms DESC, rowid DESC LIMIT ?",
                (org_id, limit),
            ).fetchall()
            return [credit_from_row(row) for row in rows]

        return await self._read(query)

    # subscriptions
    async def set_subscription(self, org_id: str, subscription: Subscription) -> Account:
        return await self._write(
            partial(ops.set_subscription, org_id=org_id, plan=subscription, now_ms=self._now_ms())
        )

    async def clear_subscription(self, org_id: str, *, as_of: datetime) -> Account:
        return await self._write(
            partial(
                ops.clear_subscription, org_id=org_id, as_of_ms=to_ms(as_of), now_ms=self._now_ms()
            )
        )

    # queries
    async def usage_records(
        self,
        org_id: str | None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        model: str | None = None,
    ) -> list[UsageRecord]:
        conditions = ["created_at_ms >= ?", "created_at_ms < ?"]
        parameters: list[object] = [
            0 if start is None else to_ms(start),
            2**62 if end is None else to_ms(end),
        ]
        if org_id is not None:
            conditions.append("org_id = ?")
            parameters.append(org_id)
        if model is not None:
            conditions.append("model = ?")
            parameters.append(model)
        parameters.append(limit)
        sql = (
            f"SELECT {USAGE_COLUMNS} FROM usage_records WHERE {' AND '.join(conditions)}"
            " ORDER BY created_at_ms DESC, rowid DESC LIMIT ?"
        )

        def query(connection: sqlite3.Connection) -> list[UsageRecord]:
            return [usage_from_row(row) for row in connection.execute(sql, parameters).fetchall()]

        return await self._read(query)

    async def usage_totals(
        self, org_id: str, group_by: UsageGroup, *, start: datetime, end: datetime
    ) -> list[UsageTotal]:
        group = _GROUP_EXPRESSIONS[group_by]
        sql = (
            f"SELECT {group} AS grp, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens),"
            " SUM(total_tokens), SUM(cost_pico_usd), SUM(charged_units) FROM usage_records"
            " WHERE org_id = ? AND created_at_ms >= ? AND created_at_ms < ?"
            " GROUP BY grp ORDER BY grp"
        )

        def query(connection: sqlite3.Connection) -> list[UsageTotal]:
            rows = connection.execute(sql, (org_id, to_ms(start), to_ms(end))).fetchall()
            return [UsageTotal(str(row[0]), *(int(value) for value in row[1:])) for row in rows]

        return await self._read(query)

    # access keys
    async def add_access_key(self, key: AccessKey) -> None:
        await self._write(partial(ops.add_access_key, key=key))

    async def access_key_by_hash(self, token_sha256: str) -> AccessKey | None:
        def query(connection: sqlite3.Connection) -> AccessKey | None:
            row = connection.execute(
                f"SELECT {KEY_COLUMNS} FROM access_keys WHERE token_sha256 = ?", (token_sha256,)
            ).fetchone()
            return None if row is None else key_from_row(row)

        return await self._read(query)

    async def list_access_keys(self, org_id: str) -> list[AccessKey]:
        def query(connection: sqlite3.Connection) -> list[AccessKey]:
            rows = connection.execute(
                f"SELECT {KEY_COLUMNS} FROM access_keys WHERE org_id = ? ORDER BY created_at_ms",
                (org_id,),
            ).fetchall()
            return [key_from_row(row) for row in rows]

        return await self._read(query)

    async def revoke_access_key(self, org_id: str, key_id: str) -> AccessKey | None:
        return await self._write(
            partial(ops.revoke_access_key, org_id=org_id, key_id=key_id, now_ms=self._now_ms())
        )

    # processed events
    async def event_seen(self, event_id: str) -> bool:
        def query(connection: sqlite3.Connection) -> bool:
            found = connection.execute(
                "SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)
            ).fetchone()
            return found is not None

        return await self._read(query)

    async def mark_event(self, event_id: str, kind: str) -> bool:
        return await self._write(
            partial(ops.mark_event, event_id=event_id, kind=kind, now_ms=self._now_ms())
        )

    # verification
    async def ledger_figures(self) -> list[OrgLedgerFigures]:
        now_ms = self._now_ms()

        def query(connection: sqlite3.Connection) -> list[OrgLedgerFigures]:
            credited = dict(
                connection.execute(
                    "SELECT org_id, SUM(amount_units) FROM credit_transactions GROUP BY org_id"
                ).fetchall()
            )
            usage = {
                row[0]: row[1:]
                for row in connection.execute(
                    "SELECT org_id, SUM(charged_units), COUNT(*), SUM(subscription_units),"
                    " SUM(purchased_units), SUM(granted_units), SUM(debt_units)"
                    " FROM usage_records GROUP BY org_id"
                ).fetchall()
            }
            settled = {
                row[0]: row[1:]
                for row in connection.execute(
                    "SELECT org_id, COUNT(*), SUM(amount_units) FROM holds"
                    " WHERE state = 'settled' GROUP BY org_id"
                ).fetchall()
            }
            held = dict(
                connection.execute(
                    "SELECT org_id, SUM(amount_units) FROM holds"
                    " WHERE state = 'open' AND expires_at_ms > ? GROUP BY org_id",
                    (now_ms,),
                ).fetchall()
            )
            expired_open = dict(
                connection.execute(
                    "SELECT org_id, SUM(amount_units) FROM holds"
                    " WHERE state = 'open' AND expires_at_ms <= ? GROUP BY org_id",
                    (now_ms,),
                ).fetchall()
            )
            counted = dict(connection.execute("SELECT org_id, open_hold_units FROM accounts"))
            figures = []
            for row in connection.execute(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY org_id"
            ):
                account = account_from_row(row)
                debited, count, sub, bought, granted, debt = usage.get(account.org_id, (0,) * 6)
                settled_count, settled_units = settled.get(account.org_id, (0, 0))
                figures.append(
                    OrgLedgerFigures(
                        account=account,
                        credited_units=int(credited.get(account.org_id, 0)),
                        debited_units=int(debited),
                        usage_record_count=int(count),
                        settled_hold_count=int(settled_count),
                        settled_hold_units=int(settled_units),
                        held_units=int(held.get(account.org_id, 0)),
                        split_sums=BucketSplit(int(sub), int(bought), int(granted), int(debt)),
                        counted_held_units=int(counted[account.org_id])
                        - int(expired_open.get(account.org_id, 0)),
                    )
                )
            return figures

        return await self._read(query)
