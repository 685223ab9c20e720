"""A key's limits on MongoDB: the key document keeps them, its budget window's running total
and its last minute's admissions; the rules are ``ledger.key_limits``.

A hold of a key with limits is a transaction, not the single conditional
update of an unlimited one: it reads the key and the customer, decides with
the shared rules, and pushes the hold onto the customer document. Every
transaction that changes what a key may spend writes that customer document
(holds, settlements, releases, new limits), so snapshot isolation turns any
two that overlap into a write conflict and a rerun on fresh data.
"""

from dataclasses import replace
from typing import Any

from bson.int64 import Int64
from pymongo.asynchronous.client_session import AsyncClientSession

from ledger.clock import from_ms, optional_from_ms
from ledger.key_limits import (
    DAY_MS,
    RATE_WINDOW_MS,
    KeyLimits,
    LimitSource,
    budget_left_units,
    rate_refusal,
    retry_after_ms,
    spent_in_window,
    window_end_ms,
    window_start_ms,
)
from ledger.models import (
    AccessKey,
    HoldOutcome,
    HoldRefused,
    KeyBudgetFigures,
    KeyBudgetUse,
    RateLimited,
)
from ledger.mongo.collections import Collections
from ledger.mongo.documents import (
    Document,
    OpenHold,
    key_from_doc,
    limits_fields,
    limits_from_doc,
    open_holds,
)
from ledger.mongo.queries import FAR_FUTURE_MS


def is_limited(limits: KeyLimits) -> bool:
    return limits.budget_units is not None or limits.rate_limited


def key_held_units(customer: Document, key_id: str, now_ms: int) -> int:
    return sum(
        hold.amount_units
        for hold in open_holds(customer)
        if hold.key_id == key_id and hold.expires_at_ms > now_ms
    )


def _recent(key: Document, now_ms: int) -> list[Document]:
    """The key's admissions still inside the rate window, oldest first."""
    since_ms = now_ms - RATE_WINDOW_MS
    return [entry for entry in key.get("recent") or [] if int(entry["at_ms"]) > since_ms]


def key_refusal(
    key: Document, customer: Document, hold: OpenHold, tokens: int, now_ms: int
) -> HoldRefused | RateLimited | None:
    limits = limits_from_doc(key)
    org_id, request_id = customer["_id"], hold.request_id
    created_ms = int(key["created_at_ms"])
    if limits.budget_units is not None:
        start_ms = window_start_ms(created_ms, limits.budget_period, now_ms)
        stored_start = key.get("window_start_ms")
        spent = spent_in_window(
            None if stored_start is None else int(stored_start),
            int(key.get("window_spent_units") or 0),
            start_ms,
        )
        left = budget_left_units(limits, spent, key_held_units(customer, key["key_id"], now_ms))
        assert left is not None
        if hold.amount_units > left:
            end_ms = window_end_ms(created_ms, limits.budget_period, start_ms)
            return HoldRefused(
                request_id,
                org_id,
                max(left, 0),
                hold.amount_units,
                LimitSource.KEY_BUDGET,
                resets_at=optional_from_ms(end_ms),
            )
    recent = _recent(key, now_ms)
    window_tokens = sum(int(entry["tokens"]) for entry in recent)
    source = rate_refusal(
        limits, requests_in_window=len(recent), tokens_in_window=window_tokens, tokens=tokens
    )
    if source is None:
        return None
    if source is LimitSource.KEY_RPM:
        assert limits.rpm is not None
        admissions = [(int(entry["at_ms"]), 1) for entry in recent]
        limit, used, needed = limits.rpm, len(recent), 1
    else:
        assert limits.tpm is not None
        admissions = [(int(entry["at_ms"]), int(entry["tokens"])) for entry in recent]
        limit, used, needed = limits.tpm, window_tokens, tokens
    wait_ms = retry_after_ms(admissions, limit=limit, needed=needed, now_ms=now_ms)
    return RateLimited(request_id, org_id, source, limit, used, needed, wait_ms)


async def admit(
    collections: Collections,
    session: AsyncClientSession,
    key: Document,
    customer: Document,
    hold: OpenHold,
    tokens: int,
    now_ms: int,
) -> HoldOutcome | None:
    """Refuse by the key's limits, or record the admission on the key (None: admitted)."""
    refusal = key_refusal(key, customer, hold, tokens, now_ms)
    if refusal is not None:
        return refusal
    if limits_from_doc(key).rate_limited:
        entry = {"request_id": hold.request_id, "at_ms": Int64(now_ms), "tokens": Int64(tokens)}
        await collections.access_keys.update_one(
            {"_id": key["_id"]},
            {"$set": {"recent": [*_recent(key, now_ms), entry]}},
            session=session,
        )
    return None


async def _set_tokens(
    collections: Collections,
    session: AsyncClientSession,
    key: Document,
    request_id: str,
    tokens: int,
    now_ms: int,
) -> None:
    recent = [
        {**entry, "tokens": Int64(tokens)} if entry["request_id"] == request_id else entry
        for entry in _recent(key, now_ms)
    ]
    await collections.access_keys.update_one(
        {"_id": key["_id"]}, {"$set": {"recent": recent}}, session=session
    )


async def settled(
    collections: Collections,
    session: AsyncClientSession,
    key_id: str,
    request_id: str,
    charged_units: int,
    total_tokens: int,
    now_ms: int,
) -> None:
    """A settlement of the key's hold: its window's running total, its tpm true-up."""
    key = await collections.access_keys.find_one({"key_id": key_id}, session=session)
    if key is None:
        return
    limits = limits_from_doc(key)
    if limits.budget_units is not None:
        start_ms = window_start_ms(int(key["created_at_ms"]), limits.budget_period, now_ms)
        same = key.get("window_start_ms") == start_ms
        spent = (int(key.get("window_spent_units") or 0) if same else 0) + charged_units
        await collections.access_keys.update_one(
            {"_id": key["_id"]},
            {"$set": {"window_start_ms": Int64(start_ms), "window_spent_units": Int64(spent)}},
            session=session,
        )
    if limits.rate_limited:
        await _set_tokens(collections, session, key, request_id, total_tokens, now_ms)


async def released(
    collections: Collections, session: AsyncClientSession, key_id: str, request_id: str, now_ms: int
) -> None:
    """A released call produced nothing: it still counts for rpm, no longer for tpm."""
    key = await collections.access_keys.find_one({"key_id": key_id}, session=session)
    if key is not None and limits_from_doc(key).rate_limited:
        await _set_tokens(collections, session, key, request_id, 0, now_ms)


async def _spent_between(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    key_id: str,
    start_ms: int,
    end_ms: int,
) -> int:
    pipeline: list[dict[str, Any]] = [
        {
            "$match": {
                "org_id": org_id,
                "key_id": key_id,
                "created_at_ms": {"$gte": Int64(start_ms), "$lt": Int64(end_ms)},
            }
        },
        {"$group": {"_id": None, "units": {"$sum": "$charged_units"}}},
    ]
    cursor = await collections.usage_records.aggregate(pipeline, session=session)
    rows = await cursor.to_list()
    return int(rows[0]["units"]) if rows else 0


async def set_key_limits(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    key_id: str,
    limits: KeyLimits,
    now_ms: int,
) -> AccessKey | None:
    """As the SQL routine: the running total restarts from the window's usage records."""
    key = await collections.access_keys.find_one(
        {"org_id": org_id, "key_id": key_id}, session=session
    )
    if key is None:
        return None
    customer = await collections.customers.find_one_and_update(
        {"_id": org_id}, {"$inc": {"key_limits_version": 1}}, session=session
    )
    assert customer is not None, "a key's org has an account"
    start_ms: int | None = None
    spent = committed = 0
    if limits.budget_units is not None:
        created_ms = int(key["created_at_ms"])
        start_ms = window_start_ms(created_ms, limits.budget_period, now_ms)
        end_ms = window_end_ms(created_ms, limits.budget_period, start_ms) or FAR_FUTURE_MS
        spent = await _spent_between(collections, session, org_id, key_id, start_ms, end_ms)
        committed = spent + key_held_units(customer, key_id, now_ms)
    fields = limits_fields(
        limits, set_at_ms=now_ms, committed_units=committed, window_start=start_ms, spent=spent
    )
    await collections.access_keys.update_one({"_id": key["_id"]}, {"$set": fields}, session=session)
    return replace(key_from_doc(key), limits=limits)


def budget_use(key: Document, customer: Document, now_ms: int) -> KeyBudgetUse:
    limits = limits_from_doc(key)
    created_ms = int(key["created_at_ms"])
    start_ms = window_start_ms(created_ms, limits.budget_period, now_ms)
    stored_start = key.get("window_start_ms")
    return KeyBudgetUse(
        key["key_id"],
        limits,
        from_ms(start_ms),
        optional_from_ms(window_end_ms(created_ms, limits.budget_period, start_ms)),
        spent_in_window(
            None if stored_start is None else int(stored_start),
            int(key.get("window_spent_units") or 0),
            start_ms,
        ),
        key_held_units(customer, key["key_id"], now_ms),
    )


async def budget_figures(
    collections: Collections, session: AsyncClientSession, key: Document
) -> KeyBudgetFigures:
    created_ms = int(key["created_at_ms"])
    day = {"$floor": {"$divide": [{"$subtract": ["$created_at_ms", created_ms]}, DAY_MS]}}
    pipeline: list[dict[str, Any]] = [
        {"$match": {"key_id": key["key_id"], "created_at_ms": {"$gte": Int64(created_ms)}}},
        {"$group": {"_id": day, "units": {"$sum": "$charged_units"}}},
    ]
    cursor = await collections.usage_records.aggregate(pipeline, session=session)
    by_day = sorted((int(row["_id"]), int(row["units"])) for row in await cursor.to_list())
    stored_start = key.get("window_start_ms")
    return KeyBudgetFigures(
        key["key_id"],
        limits_from_doc(key),
        created_ms,
        int(key.get("limits_set_at_ms") or created_ms),
        int(key.get("limits_committed_units") or 0),
        None if stored_start is None else int(stored_start),
        int(key.get("window_spent_units") or 0),
        tuple(by_day),
    )
