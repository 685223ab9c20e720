"""The key-limit rules every backend shares: budget windows and the rate window's wait."""

import calendar
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ledger.clock import to_ms
from ledger.key_limits import (
    DAY_MS,
    RATE_WINDOW_MS,
    BudgetPeriod,
    KeyLimits,
    LimitSource,
    rate_refusal,
    retry_after_ms,
    window_end_ms,
    window_start_ms,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
YEAR_2000_MS = to_ms(datetime(2000, 1, 1, tzinfo=UTC))
YEAR_2100_MS = to_ms(datetime(2100, 1, 1, tzinfo=UTC))
moments = st.integers(YEAR_2000_MS, YEAR_2100_MS)
periodic = st.sampled_from([BudgetPeriod.DAY, BudgetPeriod.WEEK, BudgetPeriod.MONTH])


@given(moments, moments, periodic)
def test_the_window_of_a_moment_holds_it_and_the_next_starts_where_it_ends(
    created_ms: int, now_ms: int, period: BudgetPeriod
) -> None:
    start_ms = window_start_ms(created_ms, period, now_ms)
    end_ms = window_end_ms(created_ms, period, start_ms)
    assert end_ms is not None
    if now_ms >= created_ms:
        assert start_ms <= now_ms < end_ms
    else:
        assert start_ms == created_ms
    assert window_start_ms(created_ms, period, start_ms) == start_ms
    assert window_start_ms(created_ms, period, end_ms - 1) == start_ms
    assert window_start_ms(created_ms, period, end_ms) == end_ms


@given(moments, st.integers(0, 2_000))
def test_month_windows_start_on_the_creation_day_and_time_clamped_to_the_month(
    created_ms: int, months_later: int
) -> None:
    created = EPOCH + created_ms * MS
    start_ms = created_ms
    for _ in range(months_later % 40):
        start_ms = window_end_ms(created_ms, BudgetPeriod.MONTH, start_ms) or 0
    start = EPOCH + start_ms * MS
    last_day = calendar.monthrange(start.year, start.month)[1]
    assert start.day == min(created.day, last_day)
    assert start.time() == created.time()


@given(moments, st.integers(0, 40_000), st.sampled_from(list(BudgetPeriod)))
def test_every_day_since_creation_lies_inside_one_window(
    created_ms: int, day: int, period: BudgetPeriod
) -> None:
    day_start_ms = created_ms + day * DAY_MS
    assert window_start_ms(created_ms, period, day_start_ms) == window_start_ms(
        created_ms, period, day_start_ms + DAY_MS - 1
    )


def test_a_total_budget_is_one_window_for_the_whole_life_of_the_key() -> None:
    assert window_start_ms(5, BudgetPeriod.TOTAL, 10**12) == 5
    assert window_end_ms(5, BudgetPeriod.TOTAL, 5) is None


def test_a_month_from_january_31st_ends_on_the_last_day_of_february() -> None:
    created = to_ms(datetime(2027, 1, 31, 12, tzinfo=UTC))
    february = window_end_ms(created, BudgetPeriod.MONTH, created)
    assert february == to_ms(datetime(2027, 2, 28, 12, tzinfo=UTC))
    assert window_end_ms(created, BudgetPeriod.MONTH, february) == to_ms(
        datetime(2027, 3, 31, 12, tzinfo=UTC)
    )


def test_rate_refusal_names_rpm_before_tpm() -> None:
    limits = KeyLimits(rpm=2, tpm=100)
    assert rate_refusal(limits, requests_in_window=1, tokens_in_window=40, tokens=60) is None
    assert (
        rate_refusal(limits, requests_in_window=2, tokens_in_window=99, tokens=60)
        is LimitSource.KEY_RPM
    )
    assert (
        rate_refusal(limits, requests_in_window=1, tokens_in_window=41, tokens=60)
        is LimitSource.KEY_TPM
    )


admissions = st.lists(st.tuples(st.integers(1, RATE_WINDOW_MS), st.integers(1, 50)))


@given(admissions, st.integers(1, 200), st.integers(1, 200))
def test_waiting_the_retry_after_is_exactly_enough(
    placed: list[tuple[int, int]], limit: int, needed: int
) -> None:
    now_ms = RATE_WINDOW_MS
    window = sorted(placed)
    wait_ms = retry_after_ms(window, limit=limit, needed=needed, now_ms=now_ms)

    def fits_at(moment_ms: int) -> bool:
        left = sum(w for at, w in window if at > moment_ms - RATE_WINDOW_MS)
        return left + needed <= limit

    if needed > limit:
        assert wait_ms is None
    elif fits_at(now_ms):
        assert wait_ms == 0
    else:
        assert wait_ms is not None and wait_ms > 0
        assert fits_at(now_ms + wait_ms)
        assert not fits_at(now_ms + wait_ms - 1)
