"""``MongoLedger``: the ``LedgerStore`` protocol on MongoDB through PyMongo's async API."""

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from bson.int64 import Int64
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from ledger import checks
from ledger.clock import Clock, from_ms, optional_to_ms, system_clock, to_ms
from ledger.errors import AccountNotFound, IdempotencyConflict, LedgerUnavailable
from ledger.key_limits import KeyLimits
from ledger.models import (
    AccessKey,
    Account,
    Balance,
    CreditKind,
    CreditResult,
    CreditTransaction,
    HoldOutcome,
    HoldPlaced,
    KeyBudgetUse,
    OrgLedgerFigures,
    ReplyKey,
    ResponseOwner,
    SettleResult,
    StoredReply,
    Subscription,
    UsageDetails,
    UsageGroup,
    UsageRecord,
    UsageTotal,
)
from ledger.mongo import figures, holds, keys, operations, reply_keys
from ledger.mongo import outbox as mongo_outbox
from ledger.mongo.collections import Collections
from ledger.mongo.documents import (
    Document,
    account_from_doc,
    credit_from_doc,
    held_units,
    key_doc,
    key_from_doc,
    limits_from_doc,
    usage_from_doc,
)
from ledger.mongo.indexes import create_indexes
from ledger.mongo.queries import (
    FAR_FUTURE_MS,
    NEWEST_FIRST,
    mongo_limit,
    usage_filter,
    usage_totals_pipeline,
)
from ledger.mongo.transactions import run_once_per_id, run_transaction, translate_failures
from ledger.outbox import (
    AlertSettings,
    AutoRecharge,
    OutboxEvent,
    OutboxState,
    OutboxTopic,
    Recharge,
)
from ledger.replays import check_key_replay

SERVER_SELECTION_TIMEOUT_MS = 5_000
"""How long an operation waits for a usable server before the ledger reports itself
unavailable (PyMongo's default is 30 s); a ``serverSelectionTimeoutMS`` in the URL wins."""

WITHOUT_HOLDS = {"holds": 0}


def _connect(url: str) -> AsyncMongoClient[dict[str, Any]]:
    # Keyword options override the URL's in PyMongo, so only fill in what the URL leaves out.
    if "serverselectiontimeoutms" in url.lower():
        return AsyncMongoClient(url)
    return AsyncMongoClient(url, serverSelectionTimeoutMS=SERVER_SELECTION_TIMEOUT_MS)


async def _require_transactions(client: AsyncMongoClient[dict[str, Any]]) -> None:
    hello = await client.admin.command("hello")
    if "setName" not in hello and hello.get("msg") != "isdbgrid":
        raise LedgerUnavailable(
            "MongoDB is a standalone server, but the ledger settles in multi-document"
            " transactions, which need a replica set (one member is enough: start mongod"
            " with --replSet and run rs.initiate() once)"
        )


class MongoLedger:
    """``LedgerStore`` on a MongoDB replica set (the design is in ``ledger.mongo``)."""

    def __init__(
        self, url: str, *, database: str = "spu_gateway", clock: Clock = system_clock
    ) -> None:
        self._url = url
        self._database_name = database
        self._clock = clock
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self._collections: Collections | None = None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def _connected(self) -> tuple[AsyncMongoClient[dict[str, Any]], Collections]:
        if self._client is None or self._collections is None:
            raise LedgerUnavailable("the ledger is not open")
        return self._client, self._collections

    @translate_failures
    async def open(self) -> None:
        if self._client is not None:
            return
        client = _connect(self._url)
        try:
            await _require_transactions(client)
            database = client[self._database_name]
            await create_indexes(database)
        except BaseException:
            await client.close()
            raise
        self._client, self._collections = client, Collections.of(database)

    async def close(self) -> None:
        if self._client is None:
            return
        client = self._client
        self._client, self._collections = None, None
        await client.close()

    @translate_failures
    async def drop_database(self) -> None:
        """Delete this ledger's whole database (tests give each store a throwaway one)."""
        if self._client is not None:
            await self._client.drop_database(self._database_name)
            return
        client = _connect(self._url)
        try:
            await client.drop_database(self._database_name)
        finally:
            await client.close()

    @translate_failures
    async def ping(self) -> None:
        client, _ = self._connected
        await client.admin.command("ping")

    # accounts
    @translate_failures
    async def create_account(
        self,
        org_id: str,
        *,
        free_grant_units: int,
        user_id: str | None = None,
        user_name: str | None = None,
        user_email: str | None = None,
    ) -> Account:
        checks.free_grant(free_grant_units)
        client, collections = self._connected
        try:
            return await run_transaction(
                client,
                partial(
                    operations.create_account,
                    collections,
                    org_id=org_id,
                    free_grant_units=free_grant_units,
                    user_id=user_id,
                    user_name=user_name,
                    user_email=user_email,
                    now_ms=self._now_ms(),
                ),
            )
        except DuplicateKeyError:
            # A concurrent creation committed first: the account exists, as asked.
            return await self.get_account(org_id)

    @translate_failures
    async def get_account(self, org_id: str) -> Account:
        _, collections = self._connected
        doc = await collections.customers.find_one({"_id": org_id}, WITHOUT_HOLDS)
        if doc is None:
            raise AccountNotFound(org_id)
        return account_from_doc(doc)

    @translate_failures
    async def list_accounts(self, *, limit: int = 100, after_org_id: str = "") -> list[Account]:
        _, collections = self._connected
        batch = mongo_limit(limit)
        if batch is None:
            return []
        cursor = collections.customers.find({"_id": {"$gt": after_org_id}}, WITHOUT_HOLDS)
        docs = await cursor.sort("_id", ASCENDING).limit(batch).to_list()
        return [account_from_doc(doc) for doc in docs]

    @translate_failures
    async def set_stripe_customer(self, org_id: str, customer_id: str) -> str:
        _, collections = self._connected
        try:
            updated = await collections.customers.update_one(
                {"_id": org_id, "stripe_customer_id": {"$in": [None, ""]}},
                {
                    "$set": {
                        "stripe_customer_id": customer_id,
                        "updated_at_ms": Int64(self._now_ms()),
                    }
                },
            )
        except DuplicateKeyError as error:
            raise IdempotencyConflict(
                "stripe customer", customer_id, "belongs to another org"
            ) from error
        if updated.matched_count:
            return customer_id
        account = await self.get_account(org_id)
        assert account.stripe_customer_id, "only an org that has a customer fails the filter"
        return account.stripe_customer_id

    @translate_failures
    async def find_org_by_stripe_customer(self, customer_id: str) -> str | None:
        _, collections = self._connected
        doc = await collections.customers.find_one({"stripe_customer_id": customer_id}, {"_id": 1})
        return None if doc is None else str(doc["_id"])

    # holds and settlement
    @translate_failures
    async def hold(
        self,
        org_id: str,
        amount_units: int,
        request_id: str,
        ttl_s: float,
        key_id: str | None = None,
        tokens: int = 0,
        *,
        reply_key: ReplyKey | None = None,
    ) -> HoldOutcome:
        checks.hold(amount_units, ttl_s, tokens)
        client, collections = self._connected
        now_ms = self._now_ms()
        key = None
        if key_id is not None:
            key = await collections.access_keys.find_one({"key_id": key_id, "org_id": org_id})

        async def place() -> HoldOutcome:
            if key is None or not keys.is_limited(limits_from_doc(key)):
                return await holds.place_hold(
                    client, collections, org_id, amount_units, request_id, ttl_s, key_id, now_ms
                )
            return await run_transaction(
                client,
                partial(
                    holds.place_limited_hold,
                    collections,
                    key=key,
                    org_id=org_id,
                    amount_units=amount_units,
                    request_id=request_id,
                    ttl_s=ttl_s,
                    tokens=tokens,
                    now_ms=now_ms,
                ),
            )

        if reply_key is None:
            return await place()
        checks.reply_key(reply_key)
        lease_ms = int(ttl_s * 1000)
        taken = await reply_keys.claim(collections, org_id, reply_key, request_id, lease_ms, now_ms)
        if taken is not None:
            return taken
        placed: HoldOutcome | None = None
        try:
            placed = await place()
        finally:
            if not isinstance(placed, HoldPlaced):
                await reply_keys.give_back(collections, org_id, reply_key.key, request_id)
        return placed

    @translate_failures
    async def renew_holds(self, request_ids: Sequence[str], ttl_s: float) -> None:
        checks.renewal(ttl_s)
        if not request_ids:
            return
        _, collections = self._connected
        now_ms = self._now_ms()
        await holds.renew_holds(collections, request_ids, now_ms + int(ttl_s * 1000), now_ms)

    @translate_failures
    async def settle(
        self,
        request_id: str,
        actual_units: int,
        details: UsageDetails,
        *,
        reply: StoredReply | None = None,
    ) -> SettleResult:
        checks.settlement(actual_units)
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(
                holds.settle,
                collections,
                request_id=request_id,
                actual_units=actual_units,
                details=details,
                reply=reply,
                now_ms=self._now_ms(),
            ),
        )

    @translate_failures
    async def release(self, request_id: str) -> bool:
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(holds.release, collections, request_id=request_id, now_ms=self._now_ms()),
        )

    @translate_failures
    async def expire_holds(self, *, limit: int = 1000) -> int:
        client, collections = self._connected
        return await holds.expire_holds(client, collections, limit, self._now_ms())

    @translate_failures
    async def forget_replies(self, *, limit: int = 1000) -> int:
        _, collections = self._connected
        return await reply_keys.forget(collections, limit, self._now_ms())

    @translate_failures
    async def balance(self, org_id: str) -> Balance:
        _, collections = self._connected
        customer = await operations.load_customer(collections, org_id, None)
        return Balance(account_from_doc(customer), held_units(customer, self._now_ms()))

    # credits
    async def _credit(
        self, transaction_id: str, org_id: str, kind: CreditKind, amount_units: int, reason: str
    ) -> CreditResult:
        checks.credit(amount_units)
        client, collections = self._connected
        return await run_once_per_id(
            client,
            partial(
                operations.credit,
                collections,
                transaction_id=transaction_id,
                org_id=org_id,
                kind=kind,
                amount_units=amount_units,
                reason=reason,
                now_ms=self._now_ms(),
            ),
        )

    @translate_failures
    async def credit_purchase(
        self, session_id: str, org_id: str, amount_units: int, reason: str = "purchase"
    ) -> CreditResult:
        return await self._credit(
            f"purchase:{session_id}", org_id, CreditKind.PURCHASE, amount_units, reason
        )

    @translate_failures
    async def grant(
        self, org_id: str, amount_units: int, reason: str, idempotency_key: str
    ) -> CreditResult:
        return await self._credit(
            f"grant:{idempotency_key}", org_id, CreditKind.GRANT, amount_units, reason
        )

    @translate_failures
    async def refund_purchase(
        self, refund_id: str, org_id: str, amount_units: int, reason: str
    ) -> CreditResult:
        checks.refund(amount_units)
        client, collections = self._connected
        return await run_once_per_id(
            client,
            partial(
                operations.refund_purchase,
                collections,
                refund_id=f"refund:{refund_id}",
                org_id=org_id,
                amount_units=amount_units,
                reason=reason,
                now_ms=self._now_ms(),
            ),
        )

    @translate_failures
    async def credit_transactions(
        self, org_id: str, *, limit: int = 100
    ) -> list[CreditTransaction]:
        _, collections = self._connected
        batch = mongo_limit(limit)
        if batch is None:
            return []
        cursor = collections.credit_transactions.find({"org_id": org_id})
        docs = await cursor.sort(NEWEST_FIRST).limit(batch).to_list()
        return [credit_from_doc(doc) for doc in docs]

    # subscriptions
    @translate_failures
    async def set_subscription(self, org_id: str, subscription: Subscription) -> Account:
        checks.plan(subscription)
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(
                operations.set_subscription,
                collections,
                org_id=org_id,
                plan=subscription,
                now_ms=self._now_ms(),
            ),
        )

    @translate_failures
    async def clear_subscription(self, org_id: str, *, as_of: datetime) -> Account:
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(
                operations.clear_subscription,
                collections,
                org_id=org_id,
                as_of_ms=to_ms(as_of),
                now_ms=self._now_ms(),
            ),
        )

    # queries
    @translate_failures
    async def usage_records(
        self,
        org_id: str | None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        model: str | None = None,
    ) -> list[UsageRecord]:
        _, collections = self._connected
        batch = mongo_limit(limit)
        if batch is None:
            return []
        query = usage_filter(
            org_id,
            0 if start is None else to_ms(start),
            FAR_FUTURE_MS if end is None else to_ms(end),
            model,
        )
        cursor = collections.usage_records.find(query).sort(NEWEST_FIRST).limit(batch)
        return [usage_from_doc(doc) for doc in await cursor.to_list()]

    @translate_failures
    async def usage_totals(
        self, org_id: str, group_by: UsageGroup, *, start: datetime, end: datetime
    ) -> list[UsageTotal]:
        _, collections = self._connected
        pipeline = usage_totals_pipeline(org_id, group_by, to_ms(start), to_ms(end))
        cursor = await collections.usage_records.aggregate(pipeline)
        return [_usage_total(row) for row in await cursor.to_list()]

    # access keys
    @translate_failures
    async def add_access_key(self, key: AccessKey) -> None:
        """Store a key once; adding the same key again is a no-op, a different one a conflict."""
        checks.key_limits(key.limits)
        _, collections = self._connected
        if await collections.customers.find_one({"_id": key.org_id}, {"_id": 1}) is None:
            raise AccountNotFound(key.org_id)
        clash = {"$or": [{"key_id": key.key_id}, {"token_sha256": key.token_sha256}]}
        stored = await collections.access_keys.find_one(clash)
        if stored is None:
            try:
                await collections.access_keys.insert_one(key_doc(key))
                return
            except DuplicateKeyError:
                # A concurrent add won the unique index: judge against what it stored.
                stored = await collections.access_keys.find_one(clash)
                assert stored is not None, "keys are never deleted"
        check_key_replay(key_from_doc(stored), key)

    @translate_failures
    async def access_key_by_hash(self, token_sha256: str) -> AccessKey | None:
        _, collections = self._connected
        doc = await collections.access_keys.find_one({"token_sha256": token_sha256})
        return None if doc is None else key_from_doc(doc)

    @translate_failures
    async def list_access_keys(self, org_id: str) -> list[AccessKey]:
        _, collections = self._connected
        cursor = collections.access_keys.find({"org_id": org_id})
        docs = await cursor.sort([("created_at_ms", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [key_from_doc(doc) for doc in docs]

    @translate_failures
    async def revoke_access_key(self, org_id: str, key_id: str) -> AccessKey | None:
        _, collections = self._connected
        await collections.access_keys.update_one(
            {"org_id": org_id, "key_id": key_id, "revoked_at_ms": None},
            {"$set": {"revoked_at_ms": Int64(self._now_ms())}},
        )
        doc = await collections.access_keys.find_one({"org_id": org_id, "key_id": key_id})
        return None if doc is None else key_from_doc(doc)

    @translate_failures
    async def set_key_limits(self, org_id: str, key_id: str, limits: KeyLimits) -> AccessKey | None:
        checks.key_limits(limits)
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(
                keys.set_key_limits,
                collections,
                org_id=org_id,
                key_id=key_id,
                limits=limits,
                now_ms=self._now_ms(),
            ),
        )

    @translate_failures
    async def key_budget_use(self, org_id: str) -> list[KeyBudgetUse]:
        _, collections = self._connected
        customer = await operations.load_customer(collections, org_id, None)
        cursor = collections.access_keys.find({"org_id": org_id, "budget_units": {"$ne": None}})
        docs = await cursor.sort([("created_at_ms", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [keys.budget_use(doc, customer, self._now_ms()) for doc in docs]

    # alerts, auto-recharge and the outbox
    @translate_failures
    async def set_alerts(
        self, org_id: str, url: str, thresholds_units: Sequence[int], new_secret: str
    ) -> tuple[AlertSettings, bool]:
        checks.thresholds(thresholds_units)
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(
                mongo_outbox.set_alerts,
                collections,
                org_id=org_id,
                url=url,
                thresholds_units=list(thresholds_units),
                new_secret=new_secret,
            ),
        )

    @translate_failures
    async def clear_alerts(self, org_id: str) -> bool:
        client, collections = self._connected
        return await run_transaction(
            client, partial(mongo_outbox.clear_alerts, collections, org_id=org_id)
        )

    @translate_failures
    async def alert_settings(self, org_id: str) -> AlertSettings | None:
        _, collections = self._connected
        return await mongo_outbox.alert_settings(collections, org_id)

    @translate_failures
    async def set_auto_recharge(self, org_id: str, settings: AutoRecharge) -> AutoRecharge:
        checks.auto_recharge(settings)
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(mongo_outbox.set_auto_recharge, collections, org_id=org_id, settings=settings),
        )

    @translate_failures
    async def clear_auto_recharge(self, org_id: str) -> bool:
        client, collections = self._connected
        return await run_transaction(
            client, partial(mongo_outbox.clear_auto_recharge, collections, org_id=org_id)
        )

    @translate_failures
    async def auto_recharge(self, org_id: str) -> AutoRecharge | None:
        _, collections = self._connected
        return await mongo_outbox.auto_recharge(collections, org_id)

    @translate_failures
    async def claim_outbox(
        self, topic: OutboxTopic, *, limit: int, lease_s: float
    ) -> list[OutboxEvent]:
        _, collections = self._connected
        return await mongo_outbox.claim(
            collections, topic, limit, int(lease_s * 1000), self._now_ms()
        )

    @translate_failures
    async def outbox_delivered(self, event_id: str) -> bool:
        _, collections = self._connected
        return await mongo_outbox.delivered(collections, event_id, self._now_ms())

    @translate_failures
    async def outbox_failed(
        self, event_id: str, error: str, retry_at: datetime | None
    ) -> OutboxState | None:
        _, collections = self._connected
        return await mongo_outbox.failed_attempt(
            collections, event_id, error, optional_to_ms(retry_at), self._now_ms()
        )

    @translate_failures
    async def requeue_outbox(self, org_id: str, event_id: str) -> bool:
        _, collections = self._connected
        return await mongo_outbox.requeue(collections, org_id, event_id, self._now_ms())

    @translate_failures
    async def alert_events(
        self, org_id: str, *, state: OutboxState | None = None, limit: int = 100
    ) -> list[OutboxEvent]:
        _, collections = self._connected
        return await mongo_outbox.alert_events(collections, org_id, state, limit)

    @translate_failures
    async def recharges(self, org_id: str, *, limit: int = 20) -> list[Recharge]:
        _, collections = self._connected
        return await mongo_outbox.recharges(collections, org_id, limit)

    @translate_failures
    async def recharge_started(self, recharge_id: str, payment_intent_id: str) -> bool:
        _, collections = self._connected
        return await mongo_outbox.recharge_started(collections, recharge_id, payment_intent_id)

    @translate_failures
    async def fail_recharge(
        self, recharge_id: str, reason: str, payment_intent_id: str | None = None
    ) -> bool:
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(
                mongo_outbox.fail_recharge,
                collections,
                recharge_id=recharge_id,
                reason=reason,
                payment_intent_id=payment_intent_id,
                now_ms=self._now_ms(),
            ),
        )

    @translate_failures
    async def complete_recharge(
        self, recharge_id: str, payment_intent_id: str
    ) -> CreditResult | None:
        client, collections = self._connected
        return await run_transaction(
            client,
            partial(
                operations.complete_recharge,
                collections,
                recharge_id=recharge_id,
                payment_intent_id=payment_intent_id,
                now_ms=self._now_ms(),
            ),
        )

    # processed events
    @translate_failures
    async def event_seen(self, event_id: str) -> bool:
        _, collections = self._connected
        return (
            await collections.processed_events.find_one({"_id": event_id}, {"_id": 1}) is not None
        )

    @translate_failures
    async def mark_event(self, event_id: str, kind: str) -> bool:
        _, collections = self._connected
        event: Document = {"_id": event_id, "kind": kind, "processed_at_ms": Int64(self._now_ms())}
        try:
            await collections.processed_events.insert_one(event)
        except DuplicateKeyError:
            return False
        return True

    # response owners
    @translate_failures
    async def record_response(self, response_id: str, org_id: str, model: str) -> bool:
        checks.response(response_id, model)
        _, collections = self._connected
        if await collections.customers.find_one({"_id": org_id}, {"_id": 1}) is None:
            raise AccountNotFound(org_id)
        owner: Document = {
            "_id": response_id,
            "org_id": org_id,
            "model": model,
            "created_at_ms": Int64(self._now_ms()),
        }
        try:
            await collections.response_owners.insert_one(owner)
        except DuplicateKeyError:
            existing = await collections.response_owners.find_one({"_id": response_id})
            return existing is not None and existing["org_id"] == org_id
        return True

    @translate_failures
    async def response_owner(self, response_id: str) -> ResponseOwner | None:
        _, collections = self._connected
        found = await collections.response_owners.find_one({"_id": response_id})
        if found is None:
            return None
        return ResponseOwner(
            response_id, found["org_id"], found["model"], from_ms(int(found["created_at_ms"]))
        )

    @translate_failures
    async def forget_response(self, response_id: str, org_id: str) -> bool:
        _, collections = self._connected
        deleted = await collections.response_owners.delete_one(
            {"_id": response_id, "org_id": org_id}
        )
        return deleted.deleted_count == 1

    @translate_failures
    async def forget_responses_before(self, cutoff: datetime, *, limit: int = 1000) -> int:
        _, collections = self._connected
        batch = mongo_limit(limit)
        if batch is None:
            return 0
        due = collections.response_owners.find(
            {"created_at_ms": {"$lt": Int64(to_ms(cutoff))}}, {"_id": 1}
        )
        ids = [
            document["_id"] for document in await due.sort("created_at_ms").limit(batch).to_list()
        ]
        if not ids:
            return 0
        deleted = await collections.response_owners.delete_many({"_id": {"$in": ids}})
        return deleted.deleted_count

    # verification
    @translate_failures
    async def ledger_figures(self) -> list[OrgLedgerFigures]:
        client, collections = self._connected
        return await run_transaction(
            client, partial(figures.ledger_figures, collections, now_ms=self._now_ms())
        )


def _usage_total(row: dict[str, Any]) -> UsageTotal:
    return UsageTotal(
        group=str(row["_id"]),
        calls=int(row["calls"]),
        prompt_tokens=int(row["prompt_tokens"]),
        completion_tokens=int(row["completion_tokens"]),
        total_tokens=int(row["total_tokens"]),
        cost_pico_usd=int(row["cost_pico_usd"]),
        charged_units=int(row["charged_units"]),
    )
