"""The MongoDB filters and pipelines, checked as data (the contract suite runs them)."""

from bson.int64 import Int64

from ledger.mongo.queries import (
    available_expression,
    expired_holds_filter,
    held_units_expression,
    hold_filter,
    mongo_limit,
    pull_expired_holds,
    usage_filter,
    usage_totals_pipeline,
)

NOW_MS = 1_800_000_000_000


def test_a_zero_limit_reads_nothing_and_a_negative_one_everything() -> None:
    assert mongo_limit(0) is None
    assert mongo_limit(-1) == 0  # MongoDB's "no limit"
    assert mongo_limit(25) == 25


def test_a_hold_is_admitted_only_if_its_amount_fits_what_is_available_now() -> None:
    query = hold_filter("org-1", "req-1", 30, NOW_MS)

    assert query["_id"] == "org-1"
    assert query["holds.request_id"] == {"$ne": "req-1"}
    assert query["$expr"] == {"$gte": [available_expression(NOW_MS), Int64(30)]}
    assert isinstance(query["$expr"]["$gte"][1], Int64)


def test_a_hold_waits_for_a_due_local_renewal() -> None:
    clauses = hold_filter("org-1", "req-1", 30, NOW_MS)["$or"]

    assert {"renews_locally": {"$ne": True}} in clauses
    assert {"period_end_ms": {"$gt": NOW_MS}} in clauses


def test_available_subtracts_debt_and_unexpired_holds_from_the_buckets() -> None:
    bucket_left, owed = available_expression(NOW_MS)["$subtract"]

    assert bucket_left == {
        "$add": [
            {"$subtract": ["$subscription_allowance_units", "$subscription_used_units"]},
            {"$subtract": ["$purchased_credits_units", "$purchased_used_units"]},
            {"$subtract": ["$granted_credits_units", "$granted_used_units"]},
        ]
    }
    assert owed == {"$add": ["$debt_units", held_units_expression(NOW_MS)]}


def test_a_hold_counts_strictly_before_its_expiry_and_is_swept_from_it_on() -> None:
    unexpired = held_units_expression(NOW_MS)["$reduce"]["input"]["$filter"]

    assert unexpired["cond"] == {"$gt": ["$$hold.expires_at_ms", NOW_MS]}
    assert expired_holds_filter(NOW_MS) == {"holds.expires_at_ms": {"$lte": NOW_MS}}
    pulled = pull_expired_holds(["a", "b"], NOW_MS)["$pull"]["holds"]
    assert pulled == {"request_id": {"$in": ["a", "b"]}, "expires_at_ms": {"$lte": NOW_MS}}


def test_usage_filters_name_org_and_model_only_when_given() -> None:
    assert usage_filter(None, 0, 10, None) == {"created_at_ms": {"$gte": 0, "$lt": 10}}
    assert usage_filter("org-1", 0, 10, "gpt-4o") == {
        "created_at_ms": {"$gte": 0, "$lt": 10},
        "org_id": "org-1",
        "model": "gpt-4o",
    }


def test_usage_totals_group_keys_match_the_sqlite_report() -> None:
    def group_key(group_by: str) -> object:
        pipeline = usage_totals_pipeline("org-1", group_by, 0, 10)  # type: ignore[arg-type]
        assert pipeline[0] == {"$match": usage_filter("org-1", 0, 10, None)}
        assert pipeline[-1] == {"$sort": {"_id": 1}}
        return pipeline[1]["$group"]["_id"]

    assert group_key("model") == "$model"
    assert group_key("key") == {"$ifNull": ["$key_id", ""]}  # keyless calls group as ""
    assert group_key("day") == {
        "$dateToString": {"format": "%Y-%m-%d", "date": {"$toDate": "$created_at_ms"}}
    }
