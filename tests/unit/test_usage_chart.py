"""The usage chart's window: the billing period's UTC days, bounded, or the last 30 days."""

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from ledger.models import Account
from proxy.usage.summary import MAX_CHART_DAYS, chart_window, days_left
from tests.builders import account

NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)
FREE = account(NOW, org_id="acme")


def with_period(start: datetime, end: datetime) -> Account:
    return replace(FREE, period_start=start, period_end=end)


def test_without_a_period_the_chart_shows_the_last_30_days_to_today() -> None:
    window = chart_window(FREE, NOW)

    assert len(window.days) == 30
    assert window.days[-1] == date(2026, 3, 15)
    assert window.start == datetime(2026, 2, 14, tzinfo=UTC)
    assert window.end == datetime(2026, 3, 16, tzinfo=UTC)
    assert days_left(FREE, NOW) is None


def test_a_monthly_period_is_shown_whole_from_its_start_instant() -> None:
    start = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    account = with_period(start, datetime(2026, 4, 10, 14, 0, tzinfo=UTC))

    window = chart_window(account, NOW)

    assert window.days[0] == date(2026, 3, 10)
    assert window.days[-1] == date(2026, 4, 10)
    assert (window.start, window.end) == (start, account.period_end)
    assert days_left(account, NOW) == 27


def test_a_period_ending_at_midnight_does_not_add_an_empty_day() -> None:
    account = with_period(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))

    assert chart_window(account, NOW).days[-1] == date(2026, 3, 31)


def test_a_yearly_period_shows_its_latest_days_up_to_today() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    account = with_period(start, start + timedelta(days=365))

    window = chart_window(account, NOW)

    assert len(window.days) == MAX_CHART_DAYS
    assert window.days[-1] == NOW.date()
    assert window.start == datetime.combine(window.days[0], datetime.min.time(), tzinfo=UTC)


def test_days_left_counts_a_started_day_and_never_goes_negative() -> None:
    ends_tomorrow_morning = with_period(NOW - timedelta(days=29), NOW + timedelta(hours=20))
    ended = with_period(NOW - timedelta(days=31), NOW - timedelta(days=1))

    assert days_left(ends_tomorrow_morning, NOW) == 1
    assert days_left(ended, NOW) == 0
