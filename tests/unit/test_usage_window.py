"""Usage windows: a default one takes in every call settled up to the query, in its millisecond.

The ledger keeps whole milliseconds and reads a window with an exclusive end;
these tests pin the clock so that the call and the query share one millisecond.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger import HoldPlaced, LedgerStore, UsageDetails
from ledger.sqlite import SqliteLedger
from proxy.errors import ApiError
from proxy.usage.summary import usage_summary
from proxy.usage.window import DEFAULT_USAGE_SPAN, open_window, usage_window

NOW_S = 1_800_000_000.123
NOW = datetime.fromtimestamp(NOW_S, UTC)
ORG = "org-1"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LedgerStore]:
    """A ledger whose clock stands still at ``NOW``, holding one call settled at that instant."""
    ledger = SqliteLedger(tmp_path / "ledger.db", clock=lambda: NOW_S)
    await ledger.open()
    try:
        await ledger.create_account(ORG, free_grant_units=1_000)
        assert isinstance(await ledger.hold(ORG, 10, "req-1", ttl_s=60), HoldPlaced)
        await ledger.settle("req-1", 10, UsageDetails(model="gpt-4o-mini", provider="openai"))
        yield ledger
    finally:
        await ledger.close()


async def test_a_default_window_reads_a_call_settled_in_the_same_millisecond(
    store: LedgerStore,
) -> None:
    window = usage_window(None, None, now=NOW)

    records = await store.usage_records(ORG, start=window.start, end=window.end)
    totals = await store.usage_totals(ORG, "model", start=window.start, end=window.end)

    assert [record.request_id for record in records] == ["req-1"]
    assert [(total.group, total.calls) for total in totals] == [("gpt-4o-mini", 1)]


async def test_the_usage_page_counts_a_call_settled_in_the_same_millisecond(
    store: LedgerStore,
) -> None:
    summary = await usage_summary(store, ORG, recent_calls=5, now=NOW)

    assert [(row["model"], row["calls"]) for row in summary["daily"]["data"]] == [
        ("gpt-4o-mini", 1)
    ]


async def test_a_given_end_stays_exclusive(store: LedgerStore) -> None:
    window = usage_window(None, NOW, now=NOW)

    assert await store.usage_records(ORG, start=window.start, end=window.end) == []


def test_a_default_window_spans_thirty_days_back_from_its_end() -> None:
    window = usage_window(None, None, now=NOW)

    assert NOW < window.end <= NOW + timedelta(milliseconds=1)
    assert window.end - window.start == DEFAULT_USAGE_SPAN


def test_times_without_a_zone_are_utc() -> None:
    naive = datetime(2027, 1, 1)

    window = usage_window(naive, None, now=NOW)

    assert window.start == datetime(2027, 1, 1, tzinfo=UTC)
    assert open_window(None, naive) == (None, datetime(2027, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("start", [NOW, NOW + timedelta(seconds=1)])
def test_a_window_must_run_forwards(start: datetime) -> None:
    with pytest.raises(ApiError) as refused:
        usage_window(start, NOW, now=NOW)
    assert (refused.value.status, refused.value.param) == (400, "from")

    with pytest.raises(ApiError):
        open_window(start, NOW)
