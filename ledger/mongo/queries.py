"""Filters, updates and aggregation pipelines, built as plain data from plain values.

Keeping them pure lets the hot-path ``$expr`` and the report pipelines be read
in one place and unit-tested without a server.
"""

from typing import Any

from bson.int64 import Int64
from pymongo import DESCENDING

from ledger.models import HoldState, UsageGroup

Filter = dict[str, Any]
Pipeline = list[dict[str, Any]]

NEWEST_FIRST = [("created_at_ms", DESCENDING), ("_id", DESCENDING)]
"""Ties on the millisecond fall back to ``_id``: ObjectIds made by one client increase."""

FAR_FUTURE_MS = 2**62


def mongo_limit(limit: int) -> int | None:
    """SQLite's LIMIT in MongoDB terms: None when nothing is to be read, 0 for no limit.

    SQLite reads nothing for LIMIT 0 and everything for a negative limit;
    MongoDB's ``limit(0)`` means no limit, so a zero must never reach it.
    """
    return None if limit == 0 else max(limit, 0)


def held_units_expression(now_ms: int) -> dict[str, Any]:
    """Sum of the embedded open holds that have not expired by ``now_ms``."""
    unexpired = {
        "$filter": {
            "input": {"$ifNull": ["$holds", []]},
            "as": "hold",
            "cond": {"$gt": ["$$hold.expires_at_ms", Int64(now_ms)]},
        }
    }
    return {
        "$reduce": {
            "input": unexpired,
            "initialValue": Int64(0),
            "in": {"$add": ["$$value", "$$this.amount_units"]},
        }
    }


def available_expression(now_ms: int) -> dict[str, Any]:
    """Buckets left − debt − unexpired open holds, computed by the server on the document."""
    bucket_left = {
        "$add": [
            {"$subtract": ["$subscription_allowance_units", "$subscription_used_units"]},
            {"$subtract": ["$purchased_credits_units", "$purchased_used_units"]},
            {"$subtract": ["$granted_credits_units", "$granted_used_units"]},
        ]
    }
    return {"$subtract": [bucket_left, {"$add": ["$debt_units", held_units_expression(now_ms)]}]}


def roll_not_due_filter(now_ms: int) -> Filter:
    """Matches customers that need no local period renewal before they are spent from."""
    return {
        "$or": [
            {"renews_locally": {"$ne": True}},
            {"period_start_ms": None},
            {"period_end_ms": None},
            {"period_end_ms": {"$gt": Int64(now_ms)}},
        ]
    }


def hold_filter(org_id: str, request_id: str, amount_units: int, now_ms: int) -> Filter:
    """The whole admission decision of a hold, evaluated atomically with its ``$push``."""
    return {
        "_id": org_id,
        "holds.request_id": {"$ne": request_id},
        **roll_not_due_filter(now_ms),
        "$expr": {"$gte": [available_expression(now_ms), Int64(amount_units)]},
    }


def open_hold_filter(request_id: str) -> Filter:
    return {"holds.request_id": request_id}


def pull_hold(request_id: str) -> dict[str, Any]:
    return {"$pull": {"holds": {"request_id": request_id}}}


def expired_holds_filter(now_ms: int) -> Filter:
    return {"holds.expires_at_ms": {"$lte": Int64(now_ms)}}


def pull_expired_holds(request_ids: list[str], now_ms: int) -> dict[str, Any]:
    """Pull only the chosen holds, and only if still expired (expiry cannot be undone)."""
    return {
        "$pull": {
            "holds": {"request_id": {"$in": request_ids}, "expires_at_ms": {"$lte": Int64(now_ms)}}
        }
    }


def spend_update(
    subscription_units: int, purchased_units: int, granted_units: int, debt_units: int, now_ms: int
) -> dict[str, Any]:
    return {
        "$inc": {
            "subscription_used_units": Int64(subscription_units),
            "purchased_used_units": Int64(purchased_units),
            "granted_used_units": Int64(granted_units),
            "debt_units": Int64(debt_units),
        },
        "$set": {"updated_at_ms": Int64(now_ms)},
    }


def usage_filter(org_id: str | None, start_ms: int, end_ms: int, model: str | None) -> Filter:
    query: Filter = {"created_at_ms": {"$gte": Int64(start_ms), "$lt": Int64(end_ms)}}
    if org_id is not None:
        query["org_id"] = org_id
    if model is not None:
        query["model"] = model
    return query


_GROUP_KEYS: dict[str, Any] = {
    "model": "$model",
    "key": {"$ifNull": ["$key_id", ""]},
    "day": {"$dateToString": {"format": "%Y-%m-%d", "date": {"$toDate": "$created_at_ms"}}},
}

USAGE_TOTAL_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_pico_usd",
    "charged_units",
)


def usage_totals_pipeline(
    org_id: str, group_by: UsageGroup, start_ms: int, end_ms: int
) -> Pipeline:
    """Per model, key or UTC day: calls and sums, in ascending group order."""
    sums = {field: {"$sum": f"${field}"} for field in USAGE_TOTAL_FIELDS}
    return [
        {"$match": usage_filter(org_id, start_ms, end_ms, None)},
        {"$group": {"_id": _GROUP_KEYS[group_by], "calls": {"$sum": 1}, **sums}},
        {"$sort": {"_id": 1}},
    ]


def credited_by_org_pipeline() -> Pipeline:
    return [{"$group": {"_id": "$org_id", "credited_units": {"$sum": "$amount_units"}}}]


USAGE_SPLIT_FIELDS = ("subscription_units", "purchased_units", "granted_units", "debt_units")


def usage_by_org_pipeline() -> Pipeline:
    sums = {field: {"$sum": f"${field}"} for field in USAGE_SPLIT_FIELDS}
    return [
        {
            "$group": {
                "_id": "$org_id",
                "debited_units": {"$sum": "$charged_units"},
                "records": {"$sum": 1},
                **sums,
            }
        }
    ]


def settled_by_org_pipeline() -> Pipeline:
    return [
        {"$match": {"state": HoldState.SETTLED.value}},
        {"$group": {"_id": "$org_id", "holds": {"$sum": 1}, "units": {"$sum": "$amount_units"}}},
    ]
