"""Balance watches, alert and auto-recharge settings, recharges and the outbox on MongoDB.

The watches and both settings live in the customer document, so the settlement
that crosses a watch, which already writes that document in its transaction,
disarms it and inserts the outbox document in the same transaction. The outbox
(``payments_outbox``, ``_id`` = event id) is claimed one document at a time
with a conditional update, a lease as in the SQL backends.
"""

from typing import Any

from bson.int64 import Int64
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession

from ledger.clock import from_ms
from ledger.errors import AccountNotFound
from ledger.mongo.collections import Collections
from ledger.mongo.documents import Document, account_from_doc, optional_int64
from ledger.outbox import (
    AlertSettings,
    AutoRecharge,
    EventKind,
    OutboxEvent,
    OutboxState,
    OutboxTopic,
    Recharge,
    RechargeState,
    Watch,
    WatchKind,
    alert_watches,
    crossed,
    floor_units,
    month_start_ms,
    rearmed,
    recharge_failed_event,
    recharge_start,
    recharge_succeeded_event,
    watch_event,
)

MAX_ERROR_CHARS = 500


def watches_of(customer: Document) -> list[Watch]:
    return [
        Watch(WatchKind(w["kind"]), int(w["threshold_units"]), bool(w["armed"]))
        for w in customer.get("watches") or []
    ]


def _watch_docs(watches: list[Watch]) -> list[Document]:
    return [
        {"kind": w.kind.value, "threshold_units": Int64(w.threshold_units), "armed": w.armed}
        for w in watches
    ]


def _event_doc(event: OutboxEvent, now_ms: int) -> Document:
    return {
        "_id": event.event_id,
        "org_id": event.org_id,
        "topic": event.topic.value,
        "kind": event.kind.value,
        "balance_units": Int64(event.balance_units),
        "created_at_ms": Int64(now_ms),
        "threshold_units": optional_int64(event.threshold_units),
        "amount_units": optional_int64(event.amount_units),
        "reference": event.reference,
        "reason": event.reason,
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "last_error": None,
        "next_attempt_at_ms": Int64(now_ms),
        "claimed_until_ms": None,
    }


def event_from_doc(doc: Document) -> OutboxEvent:
    def optional(name: str) -> int | None:
        return None if doc.get(name) is None else int(doc[name])

    return OutboxEvent(
        event_id=doc["_id"],
        org_id=doc["org_id"],
        topic=OutboxTopic(doc["topic"]),
        kind=EventKind(doc["kind"]),
        balance_units=int(doc["balance_units"]),
        created_at=from_ms(int(doc["created_at_ms"])),
        threshold_units=optional("threshold_units"),
        amount_units=optional("amount_units"),
        reference=doc.get("reference"),
        reason=doc.get("reason"),
        state=OutboxState(doc["state"]),
        attempts=int(doc.get("attempts") or 0),
        last_error=doc.get("last_error"),
    )


def _recharge_from_doc(doc: Document) -> Recharge:
    return Recharge(
        doc["_id"],
        doc["org_id"],
        int(doc["amount_units"]),
        RechargeState(doc["state"]),
        doc.get("payment_intent_id"),
        doc.get("reason"),
        from_ms(int(doc["created_at_ms"])),
    )


async def _insert_event(
    collections: Collections, session: AsyncClientSession, event: OutboxEvent, now_ms: int
) -> None:
    """Once per event id: a rerun transaction upserts the same document."""
    doc = _event_doc(event, now_ms)
    await collections.outbox.update_one(
        {"_id": doc.pop("_id")}, {"$setOnInsert": doc}, upsert=True, session=session
    )


async def _set_watches(
    collections: Collections, session: AsyncClientSession, org_id: str, watches: list[Watch]
) -> None:
    await collections.customers.update_one(
        {"_id": org_id},
        {
            "$set": {
                "watches": _watch_docs(watches),
                "watch_floor_units": optional_int64(floor_units(watches)),
            }
        },
        session=session,
    )


def crossing_due(customer: Document, balance_units: int) -> bool:
    floor = customer.get("watch_floor_units")
    return floor is not None and balance_units < int(floor)


async def crossings(
    collections: Collections,
    session: AsyncClientSession,
    customer: Document,
    request_id: str,
    balance_units: int,
    now_ms: int,
) -> None:
    """As the SQL routine: disarm each crossed watch and write what follows it."""
    org_id = customer["_id"]
    watches = watches_of(customer)
    fallen = crossed(watches, balance_units)
    alerts = customer.get("alerts") is not None
    for watch in fallen:
        if watch.kind is WatchKind.RECHARGE:
            await _start_recharge(collections, session, customer, request_id, balance_units, now_ms)
        elif alerts:
            event = watch_event(watch, org_id, request_id, balance_units, now_ms)
            await _insert_event(collections, session, event, now_ms)
    kept = [Watch(w.kind, w.threshold_units, w.armed and w not in fallen) for w in watches]
    await _set_watches(collections, session, org_id, kept)


async def _start_recharge(
    collections: Collections,
    session: AsyncClientSession,
    customer: Document,
    request_id: str,
    balance_units: int,
    now_ms: int,
) -> None:
    settings_doc = customer.get("auto_recharge")
    if settings_doc is None:
        return
    settings = _recharge_settings(settings_doc)
    org_id = customer["_id"]
    month_ms = month_start_ms(now_ms)
    pipeline: list[dict[str, Any]] = [
        {
            "$match": {
                "org_id": org_id,
                "month_start_ms": Int64(month_ms),
                "state": {"$ne": "failed"},
            }
        },
        {"$group": {"_id": None, "units": {"$sum": "$amount_units"}}},
    ]
    rows = await (await collections.recharges.aggregate(pipeline, session=session)).to_list()
    recharged = int(rows[0]["units"]) if rows else 0
    recharge, event = recharge_start(org_id, request_id, settings, recharged, balance_units, now_ms)
    recharge_doc = {
        "org_id": org_id,
        "amount_units": Int64(recharge.amount_units),
        "month_start_ms": Int64(month_ms),
        "state": recharge.state.value,
        "payment_intent_id": None,
        "reason": recharge.reason,
        "created_at_ms": Int64(now_ms),
    }
    await collections.recharges.update_one(
        {"_id": recharge.recharge_id}, {"$setOnInsert": recharge_doc}, upsert=True, session=session
    )
    if event.topic is OutboxTopic.RECHARGE or customer.get("alerts") is not None:
        await _insert_event(collections, session, event, now_ms)


def _recharge_settings(doc: Document) -> AutoRecharge:
    return AutoRecharge(
        int(doc["threshold_units"]), int(doc["amount_units"]), int(doc["monthly_cap_units"])
    )


async def _customer(
    collections: Collections, session: AsyncClientSession | None, org_id: str
) -> Document:
    customer = await collections.customers.find_one({"_id": org_id}, session=session)
    if customer is None:
        raise AccountNotFound(org_id)
    return customer


async def rearm(collections: Collections, session: AsyncClientSession, org_id: str) -> None:
    """A credit lifted the balance: re-arm the watches it came back up to."""
    customer = await _customer(collections, session, org_id)
    watches = watches_of(customer)
    back = rearmed(watches, account_from_doc(customer).net_balance_units)
    if back:
        await _set_watches(
            collections,
            session,
            org_id,
            [Watch(w.kind, w.threshold_units, w.armed or w in back) for w in watches],
        )


def _replaced(watches: list[Watch], kinds: tuple[WatchKind, ...], new: list[Watch]) -> list[Watch]:
    return [*(w for w in watches if w.kind not in kinds), *new]


async def set_alerts(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    url: str,
    thresholds_units: list[int],
    new_secret: str,
) -> tuple[AlertSettings, bool]:
    customer = await _customer(collections, session, org_id)
    existing = customer.get("alerts")
    secret = existing["secret"] if existing else new_secret
    new = alert_watches(thresholds_units)
    watches = _replaced(watches_of(customer), (WatchKind.LOW, WatchKind.DEPLETED), new)
    await collections.customers.update_one(
        {"_id": org_id}, {"$set": {"alerts": {"url": url, "secret": secret}}}, session=session
    )
    await _set_watches(collections, session, org_id, watches)
    thresholds = tuple(w.threshold_units for w in new if w.kind is WatchKind.LOW)
    return AlertSettings(org_id, url, secret, thresholds), existing is None


async def clear_alerts(collections: Collections, session: AsyncClientSession, org_id: str) -> bool:
    customer = await _customer(collections, session, org_id)
    watches = _replaced(watches_of(customer), (WatchKind.LOW, WatchKind.DEPLETED), [])
    await collections.customers.update_one(
        {"_id": org_id}, {"$set": {"alerts": None}}, session=session
    )
    await _set_watches(collections, session, org_id, watches)
    return customer.get("alerts") is not None


async def alert_settings(collections: Collections, org_id: str) -> AlertSettings | None:
    customer = await _customer(collections, None, org_id)
    alerts = customer.get("alerts")
    if alerts is None:
        return None
    low = sorted(w.threshold_units for w in watches_of(customer) if w.kind is WatchKind.LOW)
    return AlertSettings(org_id, alerts["url"], alerts["secret"], tuple(low))


async def set_auto_recharge(
    collections: Collections, session: AsyncClientSession, org_id: str, settings: AutoRecharge
) -> AutoRecharge:
    customer = await _customer(collections, session, org_id)
    watch = Watch(WatchKind.RECHARGE, settings.threshold_units, True)
    watches = _replaced(watches_of(customer), (WatchKind.RECHARGE,), [watch])
    fields = {
        "threshold_units": Int64(settings.threshold_units),
        "amount_units": Int64(settings.amount_units),
        "monthly_cap_units": Int64(settings.monthly_cap_units),
    }
    await collections.customers.update_one(
        {"_id": org_id}, {"$set": {"auto_recharge": fields}}, session=session
    )
    await _set_watches(collections, session, org_id, watches)
    return settings


async def clear_auto_recharge(
    collections: Collections, session: AsyncClientSession, org_id: str
) -> bool:
    customer = await _customer(collections, session, org_id)
    watches = _replaced(watches_of(customer), (WatchKind.RECHARGE,), [])
    await collections.customers.update_one(
        {"_id": org_id}, {"$set": {"auto_recharge": None}}, session=session
    )
    await _set_watches(collections, session, org_id, watches)
    return customer.get("auto_recharge") is not None


async def auto_recharge(collections: Collections, org_id: str) -> AutoRecharge | None:
    settings = (await _customer(collections, None, org_id)).get("auto_recharge")
    return None if settings is None else _recharge_settings(settings)


async def claim(
    collections: Collections, topic: OutboxTopic, limit: int, lease_ms: int, now_ms: int
) -> list[OutboxEvent]:
    due = {
        "topic": topic.value,
        "state": OutboxState.PENDING.value,
        "next_attempt_at_ms": {"$lte": Int64(now_ms)},
        "$or": [{"claimed_until_ms": None}, {"claimed_until_ms": {"$lte": Int64(now_ms)}}],
    }
    claimed = []
    for _ in range(limit):
        doc = await collections.outbox.find_one_and_update(
            due,
            {"$set": {"claimed_until_ms": Int64(now_ms + lease_ms)}},
            sort=[("next_attempt_at_ms", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            break
        claimed.append(event_from_doc(doc))
    return claimed


async def delivered(collections: Collections, event_id: str, now_ms: int) -> bool:
    result = await collections.outbox.update_one(
        {"_id": event_id, "state": OutboxState.PENDING.value},
        {
            "$set": {"state": OutboxState.DELIVERED.value, "ended_at_ms": Int64(now_ms)},
            "$inc": {"attempts": 1},
            "$unset": {"claimed_until_ms": ""},
        },
    )
    return result.modified_count == 1


async def failed_attempt(
    collections: Collections, event_id: str, error: str, retry_at_ms: int | None, now_ms: int
) -> OutboxState | None:
    state = OutboxState.DEAD if retry_at_ms is None else OutboxState.PENDING
    fields: Document = {
        "state": state.value,
        "last_error": error[:MAX_ERROR_CHARS],
        "claimed_until_ms": None,
    }
    if retry_at_ms is not None:
        fields["next_attempt_at_ms"] = Int64(retry_at_ms)
    else:
        fields["ended_at_ms"] = Int64(now_ms)
    result = await collections.outbox.update_one(
        {"_id": event_id, "state": OutboxState.PENDING.value},
        {"$set": fields, "$inc": {"attempts": 1}},
    )
    return state if result.modified_count else None


async def requeue(collections: Collections, org_id: str, event_id: str, now_ms: int) -> bool:
    result = await collections.outbox.update_one(
        {"_id": event_id, "org_id": org_id, "state": OutboxState.DEAD.value},
        {
            "$set": {
                "state": OutboxState.PENDING.value,
                "attempts": 0,
                "next_attempt_at_ms": Int64(now_ms),
                "claimed_until_ms": None,
                "ended_at_ms": None,
            }
        },
    )
    return result.modified_count == 1


async def alert_events(
    collections: Collections, org_id: str, state: OutboxState | None, limit: int
) -> list[OutboxEvent]:
    await _customer(collections, None, org_id)
    query: Document = {"org_id": org_id, "topic": OutboxTopic.ALERT.value}
    if state is not None:
        query["state"] = state.value
    cursor = collections.outbox.find(query).sort(
        [("created_at_ms", DESCENDING), ("_id", DESCENDING)]
    )
    return [event_from_doc(doc) for doc in await cursor.limit(limit).to_list()]


async def recharges(collections: Collections, org_id: str, limit: int) -> list[Recharge]:
    cursor = collections.recharges.find({"org_id": org_id}).sort(
        [("created_at_ms", DESCENDING), ("_id", DESCENDING)]
    )
    return [_recharge_from_doc(doc) for doc in await cursor.limit(limit).to_list()]


async def recharge_row(
    collections: Collections, session: AsyncClientSession | None, recharge_id: str
) -> Recharge | None:
    doc = await collections.recharges.find_one({"_id": recharge_id}, session=session)
    return None if doc is None else _recharge_from_doc(doc)


async def recharge_started(
    collections: Collections, recharge_id: str, payment_intent_id: str
) -> bool:
    result = await collections.recharges.update_one(
        {"_id": recharge_id, "state": RechargeState.PENDING.value},
        {"$set": {"payment_intent_id": payment_intent_id}},
    )
    return result.modified_count == 1


async def fail_recharge(
    collections: Collections,
    session: AsyncClientSession,
    recharge_id: str,
    reason: str,
    payment_intent_id: str | None,
    now_ms: int,
) -> bool:
    recharge = await recharge_row(collections, session, recharge_id)
    if recharge is None or recharge.state is not RechargeState.PENDING:
        return False
    fields: Document = {
        "state": RechargeState.FAILED.value,
        "reason": reason,
        "ended_at_ms": Int64(now_ms),
    }
    if payment_intent_id is not None:
        fields["payment_intent_id"] = payment_intent_id
    await collections.recharges.update_one({"_id": recharge_id}, {"$set": fields}, session=session)
    customer = await _customer(collections, session, recharge.org_id)
    if customer.get("alerts") is not None:
        event = recharge_failed_event(
            recharge_id,
            recharge.org_id,
            recharge.amount_units,
            account_from_doc(customer).net_balance_units,
            payment_intent_id,
            reason,
            now_ms,
        )
        await _insert_event(collections, session, event, now_ms)
    return True


async def recharge_succeeded(
    collections: Collections,
    session: AsyncClientSession,
    recharge: Recharge,
    payment_intent_id: str,
    now_ms: int,
) -> None:
    await collections.recharges.update_one(
        {"_id": recharge.recharge_id},
        {
            "$set": {
                "state": RechargeState.SUCCEEDED.value,
                "payment_intent_id": payment_intent_id,
                "ended_at_ms": Int64(now_ms),
            }
        },
        session=session,
    )
    customer = await _customer(collections, session, recharge.org_id)
    if customer.get("alerts") is not None:
        event = recharge_succeeded_event(
            recharge, account_from_doc(customer).net_balance_units, payment_intent_id, now_ms
        )
        await _insert_event(collections, session, event, now_ms)
